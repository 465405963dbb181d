"""CPU op benchmarks (pytest-benchmark), side by side in one run at the authors' size B=64, N=256, C=64, T=64.

    python -m pytest benchmarks/bench_cpu_ops.py --benchmark-only --benchmark-columns=median,iqr,rounds

Providers:
- blkit's native ``cpu`` backend (C++ kernels), dense and bit-packed state where the op has both;
- the authors' program (``blkit.reference``) eager, and ``torch.compile`` of the same function (compiled once
  before timing and warmed up, so timings exclude compilation);
- numpy where it has the same operation (``packbits`` / ``unpackbits`` with ``axis=-1, bitorder="little"``).

Groups:
- sample_step: one reverse step t = 64 -> 63 (``authors.sample_step(logits, x.float(), 64, 63, Scheduler(64))``);
- q_sample+loss fwd+bwd: forward noising at per-sample t, the default training loss (p_flip, class balance)
  and its backward to the logits (``authors.q_sample`` + ``authors.loss_from_logits(...)["loss"].backward()``);
- pack_bits / unpack_bits.

At the end of the module the speedups of blkit over every other provider of a group (ratios of medians, taken
in this run) are printed; set BLKIT_BENCH_RATIOS=path.json to also write them (with medians and IQRs) to a file.
"""
import contextlib
import json
import os

import numpy as np
import pytest
import torch

import blkit
from blkit import _registry, ops
from blkit import reference as authors
from blkit.bench import host

B, N, C, T = 64, 256, 64, 64
GEN = torch.Generator().manual_seed(0)
BITS = torch.randint(0, 2, (B, N, C), generator=GEN, dtype=torch.uint8)
PACKED = ops.pack_bits(BITS, backend="reference")
LOGITS = torch.randn(B, N, C, generator=GEN)
T_VEC = torch.randint(1, T + 1, (B,), generator=GEN)
SCHEDULE = blkit.NoiseSchedule(T)
SCHED = authors.Scheduler(T)

HAVE_CPU = _registry.backend_info("cpu").available
needs_cpu = pytest.mark.skipif(not HAVE_CPU, reason="the native cpu backend is not built")

_RESULTS: dict = {}  # group -> provider -> (median s, iqr s, rounds)


def _record(benchmark, group: str, provider: str) -> None:
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None:
        _RESULTS.setdefault(group, {})[provider] = (stats.median, stats.iqr, stats.rounds)


def _warm(fn, times: int = 3) -> None:
    for _ in range(times):
        fn()


@pytest.fixture(scope="module", autouse=True)
def _ratio_report(request):
    """After the module: blkit's speedup over every other provider of each group (ratio of medians)."""
    yield
    if not _RESULTS:
        return
    cpu, commit = host.cpu_model(), host.commit()
    lines = ["", f"blkit speedups (ratio of medians), B={B} N={N} C={C} T={T}, torch {torch.__version__}, "
                 f"{cpu}, {os.cpu_count()} CPUs, threads {torch.get_num_threads()}, commit {commit}"]
    report = {"size": dict(B=B, N=N, C=C, T=T), "torch": torch.__version__, "cpu": cpu,
              "cpus": os.cpu_count(), "commit": commit,
              "threads": torch.get_num_threads(), "groups": {}}
    for group, results in _RESULTS.items():
        report["groups"][group] = {p: dict(median_s=m, iqr_s=i, rounds=r) for p, (m, i, r) in results.items()}
        ours = {p: m for p, (m, _, _) in results.items() if p.startswith("blkit")}
        others = {p: m for p, (m, _, _) in results.items() if not p.startswith("blkit")}
        for mine, t_mine in ours.items():
            for other, t_other in others.items():
                lines.append(f"  {group:24s} {mine:22s} {t_mine * 1e3:10.3f} ms   vs {other:26s} "
                             f"{t_other * 1e3:10.3f} ms   {t_other / t_mine:8.1f}x")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is not None:
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            for line in lines:
                reporter.write_line(line)
    path = os.environ.get("BLKIT_BENCH_RATIOS")
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)


# --- sample_step ---------------------------------------------------------------------------------------------------
@needs_cpu
@pytest.mark.benchmark(group="sample_step")
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_sample_step_blkit(benchmark, packed):
    state = PACKED if packed else BITS
    fn = lambda: ops.sample_step(LOGITS, state, 64, 63, SCHEDULE, 0, packed=packed, backend="cpu")  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "sample_step", f"blkit-cpu-{'packed' if packed else 'dense'}")


@pytest.mark.benchmark(group="sample_step")
def test_sample_step_authors_eager(benchmark):
    x = BITS.float()
    fn = lambda: authors.sample_step(LOGITS, x, 64, 63, SCHED)  # noqa: E731
    _warm(fn, 1)
    benchmark(fn)
    _record(benchmark, "sample_step", "authors-eager")


@pytest.mark.benchmark(group="sample_step")
def test_sample_step_authors_compiled(benchmark):
    torch._dynamo.reset()
    compiled = torch.compile(authors.sample_step)
    x = BITS.float()
    fn = lambda: compiled(LOGITS, x, 64, 63, SCHED)  # noqa: E731
    _warm(fn)  # compiles (outside the timing)
    benchmark(fn)
    _record(benchmark, "sample_step", "authors-torch.compile")


# --- q_sample + diffusion_loss, forward and backward ---------------------------------------------------------------
def _blkit_loss_step(logits):
    x_t, _ = ops.q_sample(BITS, T_VEC, SCHEDULE, 0, backend="cpu")
    ops.diffusion_loss(logits, x_t, BITS, T_VEC, SCHEDULE, backend="cpu").backward()
    logits.grad = None


def _authors_loss(logits, x0, t):
    x_t = authors.q_sample(SCHED, x0, t)
    return authors.loss_from_logits(logits, x0, x_t, t, SCHED)["loss"]


@needs_cpu
@pytest.mark.benchmark(group="q_sample+loss fwd+bwd")
def test_loss_blkit(benchmark):
    logits = LOGITS.clone().requires_grad_()
    fn = lambda: _blkit_loss_step(logits)  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "q_sample+loss fwd+bwd", "blkit-cpu")


def _authors_loss_step(loss_fn, logits, x0):
    loss_fn(logits, x0, T_VEC).backward()
    logits.grad = None


@pytest.mark.benchmark(group="q_sample+loss fwd+bwd")
def test_loss_authors_eager(benchmark):
    logits, x0 = LOGITS.clone().requires_grad_(), BITS.float()
    fn = lambda: _authors_loss_step(_authors_loss, logits, x0)  # noqa: E731
    _warm(fn, 1)
    benchmark(fn)
    _record(benchmark, "q_sample+loss fwd+bwd", "authors-eager")


@pytest.mark.benchmark(group="q_sample+loss fwd+bwd")
def test_loss_authors_compiled(benchmark):
    torch._dynamo.reset()
    compiled = torch.compile(_authors_loss)
    logits, x0 = LOGITS.clone().requires_grad_(), BITS.float()
    fn = lambda: _authors_loss_step(compiled, logits, x0)  # noqa: E731
    _warm(fn)  # compiles forward and backward (outside the timing)
    benchmark(fn)
    _record(benchmark, "q_sample+loss fwd+bwd", "authors-torch.compile")


# --- pack / unpack -------------------------------------------------------------------------------------------------
@needs_cpu
@pytest.mark.benchmark(group="pack_bits")
def test_pack_bits_blkit(benchmark):
    fn = lambda: ops.pack_bits(BITS, backend="cpu")  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "pack_bits", "blkit-cpu")


@pytest.mark.benchmark(group="pack_bits")
def test_pack_bits_numpy(benchmark):
    array = BITS.numpy()
    fn = lambda: np.packbits(array, axis=-1, bitorder="little")  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "pack_bits", "numpy.packbits")


@needs_cpu
@pytest.mark.benchmark(group="unpack_bits")
def test_unpack_bits_blkit(benchmark):
    fn = lambda: ops.unpack_bits(PACKED, C, backend="cpu")  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "unpack_bits", "blkit-cpu")


@pytest.mark.benchmark(group="unpack_bits")
def test_unpack_bits_numpy(benchmark):
    array = PACKED.numpy()
    fn = lambda: np.unpackbits(array, axis=-1, bitorder="little")  # noqa: E731
    _warm(fn)
    benchmark(fn)
    _record(benchmark, "unpack_bits", "numpy.unpackbits")
