"""The "cuda" backend (hand-written kernels of csrc/cuda).

Two parts:
- GPU checks (marked gpu, skipped without a CUDA device or without the backend): bits equal to the reference and
  Triton backends on odd shapes, misaligned buffers, sample_step within the rounding rule of DESIGN §2, the loss
  and its gradient against the reference backend, CUDA-graph capture and replay with a new seed, 16M elements
  and int64 indexing.
- The same kernels compiled for the CPU emulation of CUDA (csrc/cuda/emu; needs a C++20 compiler, skipped
  otherwise): their logic (indexing, tails, packing, per-sample counts, reductions, every input dtype, unaligned
  buffers, several grid sizes) checked against the reference and CPU backends on machines without a GPU.
"""
import contextlib
import importlib
import importlib.util
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

import blkit
from blkit import _registry, ops
from blkit._backends.reference.ops import uniforms

from . import oracle

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = [1, 7, 63, 64, 65, 130]
SHAPES = [(1, 1, c) for c in CHANNELS] + [(3, 5, c) for c in CHANNELS] + [(2, 37, 64), (1000,)]
SEEDS = [(0, 0), (2**64 - 1, 2**32 - 11), (12345, 2**63 + 5)]
BINARY_DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
                 torch.bfloat16, torch.float32, torch.float64]


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _misaligned(t: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of t whose data pointer is one element past a 16-byte boundary."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    out = buf[1:].view(t.shape)
    out.copy_(t)
    return out


def _binary(shape, dtype, generator, device):
    bits = torch.randint(0, 2, shape, generator=generator, device=device)
    if dtype.is_floating_point:  # -0.0 counts as 0, any other value (even NaN) as 1
        values = torch.where(bits.bool(), torch.tensor(float("nan")), torch.tensor(-0.0)).to(device)
        keep = torch.rand(shape, generator=generator, device=device) < 0.5
        return torch.where(keep, bits.to(dtype), values.to(dtype))
    if dtype == torch.bool:
        return bits.bool()
    return (bits * torch.randint(1, 100, shape, generator=generator, device=device)).to(dtype)


# =================================================================================================================
# Checks shared by the GPU and the emulated runs (device = "cuda" or "cpu"; backend="cuda" in both)
# =================================================================================================================
def check_bit_ops(device, shape, generator, other=("reference",)):
    oracle = other[0]
    bits = torch.randint(0, 2, shape, generator=generator, device=device, dtype=torch.uint8)
    packed = ops.pack_bits(bits, backend="cuda")
    for name in other:
        assert torch.equal(packed, ops.pack_bits(bits, backend=name)), name
    assert torch.equal(ops.pack_bits(_misaligned(bits), backend="cuda"), packed)
    for dtype in BINARY_DTYPES:
        dense = _binary(shape, dtype, generator, device)
        want = ops.pack_bits(dense, backend=oracle)
        assert torch.equal(ops.pack_bits(dense, backend="cuda"), want), dtype
        assert torch.equal(ops.pack_bits(_misaligned(dense), backend="cuda"), want), dtype
        unpacked = ops.unpack_bits(packed, shape[-1], dtype, backend="cuda")
        assert unpacked.dtype == dtype and torch.equal(unpacked, bits.to(dtype)), dtype
        assert torch.equal(ops.unpack_bits(_misaligned(packed), shape[-1], dtype, backend="cuda"), bits.to(dtype))
        other_dense = _binary(shape, dtype, generator, device)
        assert torch.equal(ops.xor_bits(dense, other_dense, backend="cuda"),
                           ops.xor_bits(dense, other_dense, backend=oracle)), dtype
    flipped = packed.flip(0)
    assert torch.equal(ops.xor_bits(packed, flipped, backend="cuda"), packed ^ flipped)
    assert torch.equal(ops.xor_bits(_misaligned(packed), flipped, backend="cuda"), packed ^ flipped)
    for dim in range(len(shape)):
        want = ops.popcount(packed, dim, backend=oracle)
        assert torch.equal(ops.popcount(packed, dim, backend="cuda"), want), dim
        assert torch.equal(ops.popcount(_misaligned(packed), dim, backend="cuda"), want), dim


def check_random_bits(device, shape, generator, other=("reference",), seeds=SEEDS):
    schedule = blkit.NoiseSchedule(64, "cos")
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        probs = torch.rand(shape, generator=generator, device=device).to(dtype)
        for seed, offset in seeds:
            for packed in (False, True):
                got = ops.bernoulli(probs, seed, offset, packed=packed, backend="cuda")
                for name in other:
                    assert torch.equal(got, ops.bernoulli(probs, seed, offset, packed=packed, backend=name)), name
                assert torch.equal(ops.bernoulli(_misaligned(probs), seed, offset, packed=packed, backend="cuda"), got)
            for det in (False, True):
                got = ops.binary_quantize(probs, seed, offset, deterministic=det, backend="cuda")
                assert got.dtype == dtype
                for name in other:
                    want = ops.binary_quantize(probs, seed, offset, deterministic=det, backend=name)
                    assert torch.equal(got, want), name
    for x_dtype in (torch.uint8, torch.bool, torch.float32, torch.int64):
        x0 = _binary(shape, x_dtype, generator, device)
        for per_sample in (False, True):
            t = torch.randint(1, 65, (shape[0],), generator=generator, device=device) if per_sample else 17
            for packed in (False, True):
                for seed, offset in seeds[:2]:
                    got = ops.q_sample(x0, t, schedule, seed, offset, packed=packed, return_counts=True,
                                       backend="cuda")
                    for name in other:
                        want = ops.q_sample(x0, t, schedule, seed, offset, packed=packed, return_counts=True,
                                            backend=name)
                        for a, b in zip(got, want):
                            assert torch.equal(a, b), (name, x_dtype, per_sample, packed)


def check_sample_step(device, generator, shape=(6, 33, 64), exact_backend=None):
    """sample_step within the rounding rule of the reference: a mismatch only where u (or phat at the last step)
    lies within float32 rounding of the posterior; with exact_backend, bit-identical to that backend."""
    schedule = blkit.NoiseSchedule(64)
    batch = shape[0]
    for logit_dtype in (torch.float32, torch.bfloat16, torch.float16):
        logits = (torch.randn(shape, generator=generator, device=device) * 3).to(logit_dtype)
        uncond = torch.randn(shape, generator=generator, device=device).to(logit_dtype)
        x_t = torch.randint(0, 2, shape, generator=generator, device=device, dtype=torch.uint8)
        mask = torch.randint(0, 2, shape[1:], generator=generator, device=device, dtype=torch.uint8)
        known = torch.randint(0, 2, shape[1:], generator=generator, device=device).bool()
        t_vec = torch.randint(2, 65, (batch,), generator=generator, device=device)
        steps = [(64, 59), (5, 1), (1, 0), (t_vec, t_vec - 1), (t_vec, torch.where(t_vec > 30, t_vec - 2, 0))]
        for p_flip in (True, False):
            for kw in (dict(), dict(temperature=0.7, uncond_logits=uncond, guidance_scale=1.5),
                       dict(mask=mask, known=known)):
                for t, tp in steps:
                    for packed in (False, True):
                        x_in = ops.pack_bits(x_t, backend="reference") if packed else x_t
                        args = (logits, x_in, t, tp, schedule, 7, 2**32 - 100)
                        got = ops.sample_step(*args, p_flip=p_flip, packed=packed, backend="cuda", **kw)
                        want = ops.sample_step(*args, p_flip=p_flip, packed=packed, backend="reference", **kw)
                        if exact_backend is not None:
                            exact = ops.sample_step(*args, p_flip=p_flip, packed=packed, backend=exact_backend, **kw)
                            assert torch.equal(got, exact), (exact_backend, logit_dtype, p_flip, kw.keys(), packed)
                        if packed:
                            got = ops.unpack_bits(got, shape[-1], backend="reference")
                            want = ops.unpack_bits(want, shape[-1], backend="reference")
                        _assert_rounding_rule(got, want, logits, x_t, t, tp, schedule, p_flip, kw)


def _assert_rounding_rule(got, want, logits, x_t, t, tp, schedule, p_flip, kw):
    differ = got != want
    if not bool(differ.any()):
        return
    assert differ.double().mean().item() < 1e-3  # small tensors: a handful at most
    post_kw = {k: v for k, v in kw.items() if k not in ("mask", "known")}
    pi = ops.posterior(logits, x_t, t, tp, schedule, p_flip=p_flip, backend="reference", **post_kw)
    final = torch.as_tensor(tp, device=logits.device) == 0
    final = final.reshape(-1, *([1] * (logits.dim() - 1))) if final.dim() else final
    rng = torch.tensor([7, 2**32 - 100], dtype=torch.int64, device=logits.device)
    threshold = torch.where(final, torch.full_like(pi, 0.5), uniforms(rng, logits.shape))
    gap = (pi - threshold).abs()[differ]
    assert gap.max().item() < 1e-5, gap.max().item()


def check_loss(device, generator, logit_dtype, shape=(5, 19, 33)):
    schedule = blkit.NoiseSchedule(64)
    batch = shape[0]
    logits = (torch.randn(shape, generator=generator, device=device) * 2).to(logit_dtype)
    x0 = torch.randint(0, 2, shape, generator=generator, device=device, dtype=torch.uint8)
    t = torch.randint(1, 65, (batch,), generator=generator, device=device)
    t[0] = 1  # the aux term's first-step branch
    x_t, _ = ops.q_sample(x0, t, schedule, 3, backend="reference")
    for p_flip in (True, False):
        for balance in (True, False):
            for gamma, weighting, aux in ((0.0, "mean", 0.0), (2.0, "weighted", 0.1), (1.0, "mean", 0.1),
                                          (1.5, "weighted", 0.0)):
                for reduction in ("mean", "sum", "none"):
                    for tt in (t, 9):
                        kw = dict(p_flip=p_flip, balance=balance, gamma=gamma, weighting=weighting, aux_weight=aux,
                                  reduction=reduction)
                        results = []
                        for name in ("cuda", "reference"):
                            l = logits.clone().requires_grad_()
                            loss = ops.diffusion_loss(l, x_t, x0, tt, schedule, backend=name, **kw)
                            (loss.sum() if reduction == "none" else loss).backward()
                            results.append((loss.detach().double(), l.grad.double()))
                        (lc, gc), (lr, gr) = results
                        torch.testing.assert_close(lc, lr, rtol=2e-5, atol=1e-6)
                        # the gradient reaches the logits in their dtype (one rounding of a float32 value)
                        rtol = 1e-4 if logit_dtype == torch.float32 else 2 * torch.finfo(logit_dtype).eps
                        torch.testing.assert_close(gc, gr, rtol=rtol, atol=rtol * gr.abs().max().item() + 1e-9)
    # deterministic: the same bits twice
    a = ops.diffusion_loss(logits, x_t, x0, t, schedule, aux_weight=0.1, gamma=2.0, backend="cuda")
    b = ops.diffusion_loss(logits, x_t, x0, t, schedule, aux_weight=0.1, gamma=2.0, backend="cuda")
    assert torch.equal(a, b)


def check_loss_input_dtypes(device, generator):
    schedule = blkit.NoiseSchedule(64)
    shape = (4, 50)
    logits = torch.randn(shape, generator=generator, device=device)
    x0 = torch.randint(0, 2, shape, generator=generator, device=device, dtype=torch.uint8)
    x_t, _ = ops.q_sample(x0, 20, schedule, 3, backend="reference")
    want = ops.diffusion_loss(logits, x_t, x0, 20, schedule, aux_weight=0.1, backend="reference")
    for dtype in BINARY_DTYPES:
        got = ops.diffusion_loss(logits, x_t.to(dtype), _misaligned(x0.to(dtype)), 20, schedule, aux_weight=0.1,
                                 backend="cuda")
        torch.testing.assert_close(got, want, rtol=2e-5, atol=0)


# =================================================================================================================
# GPU
# =================================================================================================================
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture
def cuda_backend():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    info = _registry.backend_info("cuda")
    if not info.available or "cuda" not in info.devices:
        pytest.skip(f"cuda backend not available: {info.reason}")


def _gen(seed, device="cuda"):
    return torch.Generator(device=device).manual_seed(seed)


def _gpu_others():
    info = _registry.all_backends().get("triton")
    return ("reference", "triton") if info and info.available and "cuda" in info.devices else ("reference",)


def _dev(v):
    return torch.tensor(v, dtype=torch.int64, device="cuda")


@gpu
@needs_cuda
def test_cuda_backend_is_available_on_gpu():
    """With a CUDA device and a CUDA build of blkit._native, backend="cuda" is available for CUDA tensors."""
    native = pytest.importorskip("blkit._native", reason="native module not built")
    if not native.build_info()["cuda"]:
        pytest.skip("blkit._native was built without CUDA (BLKIT_WITH_CUDA=ON pip install --no-build-isolation -e .)")
    info = _registry.backend_info("cuda")
    assert info.available, info.reason
    assert "cuda" in info.devices


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bit_ops_equal_reference_and_triton(cuda_backend, shape):
    check_bit_ops("cuda", shape, _gen(1), _gpu_others())


@gpu
@needs_cuda
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_ops_bits_equal_reference_and_triton(cuda_backend, shape):
    check_random_bits("cuda", shape, _gen(2), _gpu_others())


@gpu
@needs_cuda
def test_sample_step_within_rounding_rule(cuda_backend):
    check_sample_step("cuda", _gen(3))


@gpu
@needs_cuda
@pytest.mark.parametrize("p_flip", [True, False])
@pytest.mark.parametrize("packed", [False, True])
def test_sample_step_and_posterior_large(cuda_backend, p_flip, packed):
    """(64, 256, 64) as in the authors' configuration: mismatches with the reference and the Triton backend only
    where u lies within float32 rounding of pi; the posterior within 1e-5 of float64."""
    schedule = blkit.NoiseSchedule(64)
    g = _gen(4)
    logits = torch.randn(64, 256, 64, generator=g, device="cuda") * 3
    uncond = torch.randn(64, 256, 64, generator=g, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    x_in = ops.pack_bits(x_t, backend="cuda") if packed else x_t
    kw = dict(p_flip=p_flip, temperature=0.9, uncond_logits=uncond, guidance_scale=1.5)
    for t, tp in [(64, 59), (5, 1), (1, 0)]:
        got = ops.sample_step(logits, x_in, t, tp, schedule, 3, 4, packed=packed, backend="cuda", **kw)
        for name in _gpu_others():
            want = ops.sample_step(logits, x_in, t, tp, schedule, 3, 4, packed=packed, backend=name, **kw)
            differ = ops.popcount(got ^ want, backend="cuda").sum() if packed else (got != want).sum()
            assert differ.item() <= 1e-5 * logits.numel(), name
        pi = ops.posterior(logits, x_in, t, tp, schedule, packed=packed, backend="cuda", **kw)
        expected = oracle.posterior(schedule, logits, x_t, t, tp, **kw)
        assert (pi.double() - expected).abs().max().item() < 1e-5


@gpu
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_loss_and_gradient_match_reference(cuda_backend, dtype):
    check_loss("cuda", _gen(5), dtype)
    check_loss_input_dtypes("cuda", _gen(6))


@gpu
@needs_cuda
def test_loss_large_matches_float64(cuda_backend):
    schedule = blkit.NoiseSchedule(64)
    g = _gen(7)
    shape = (64, 256, 64)
    logits = torch.randn(shape, generator=g, device="cuda") * 2
    x0 = torch.randint(0, 2, shape, generator=g, device="cuda", dtype=torch.uint8)
    t = torch.randint(1, 65, (64,), generator=g, device="cuda")
    x_t, _ = ops.q_sample(x0, t, schedule, 1, backend="cuda")
    kw = dict(gamma=2.0, weighting="weighted", aux_weight=0.1)
    l = logits.clone().requires_grad_()
    loss = ops.diffusion_loss(l, x_t, x0, t, schedule, backend="cuda", **kw)
    loss.backward()
    l64 = logits.cpu().double().requires_grad_()
    expected = oracle.loss(schedule, l64, x_t.cpu(), x0.cpu(), t.cpu(), **kw)
    expected.backward()
    torch.testing.assert_close(loss.cpu().double(), expected.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(l.grad.cpu().double(), l64.grad, rtol=1e-4, atol=1e-4 * l64.grad.abs().max().item())


def _capture(fn):
    """Warm up on a side stream, capture fn in a CUDA graph; returns (graph, outputs)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


@gpu
@needs_cuda
@pytest.mark.parametrize("packed", [False, True])
def test_graph_replay_with_new_seed(cuda_backend, packed):
    """Seed and offset are read from device memory by the kernels: a captured graph replayed after writing a new
    seed gives new samples, equal to eager calls with that seed (flip counts re-zeroed inside the graph)."""
    schedule = blkit.NoiseSchedule(64)
    g = _gen(8)
    logits = torch.randn(4, 256, 64, generator=g, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    x_in = ops.pack_bits(x_t, backend="cuda") if packed else x_t
    probs = torch.rand(4, 256, 65, generator=g, device="cuda")
    x0 = torch.randint(0, 2, (4, 256, 65), generator=g, device="cuda", dtype=torch.uint8)
    t, t_prev = _dev([40, 40, 12, 3]), _dev([39, 30, 11, 0])
    seed, offset = _dev(1), _dev(7)

    def run():
        return (ops.sample_step(logits, x_in, t, t_prev, schedule, seed, offset, packed=packed, backend="cuda"),
                *ops.q_sample(x0, t, schedule, seed, offset, packed=packed, return_counts=True, backend="cuda"),
                ops.bernoulli(probs, seed, offset, packed=packed, backend="cuda"),
                ops.binary_quantize(probs, seed, offset, backend="cuda"),
                ops.diffusion_loss(logits, x_t, x_t.flip(0), t, schedule, backend="cuda"))

    graph, outs = _capture(run)
    previous = None
    for s, o in [(1, 7), (2, 123), (2**63 + 9, 2**32 - 5)]:
        seed.fill_(_signed(s))
        offset.fill_(o)
        graph.replay()
        torch.cuda.synchronize()
        eager = run()
        for got, want in zip(outs, eager):
            assert torch.equal(got, want)
        if previous is not None:
            assert not torch.equal(outs[0], previous)
        previous = outs[0].clone()


@gpu
@needs_cuda
def test_runs_on_the_current_stream(cuda_backend):
    schedule = blkit.NoiseSchedule(64)
    g = _gen(9)
    logits = torch.randn(16, 256, 64, generator=g, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    want = ops.sample_step(logits, x_t, 30, 29, schedule, 5, backend="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = ops.sample_step(logits, x_t, 30, 29, schedule, 5, backend="cuda")
        counts = ops.popcount(ops.pack_bits(got, backend="cuda"), backend="cuda")
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(got, want)
    assert torch.equal(counts, want.sum(-1))


@gpu
@needs_cuda
def test_sample_step_16m_elements(cuda_backend):
    """16.7M elements (256 x 256 x 256), dense and packed, per-sample steps; offsets cross 2**32."""
    schedule = blkit.NoiseSchedule(64)
    g = _gen(10)
    logits = torch.randn(256, 256, 256, generator=g, device="cuda", dtype=torch.bfloat16)
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    t = torch.randint(2, 65, (256,), generator=g, device="cuda")
    tp = t - 1
    offset = 2**32 - 5_000_000
    dense = ops.sample_step(logits, x_t, t, tp, schedule, 77, offset, backend="cuda")
    packed = ops.sample_step(logits, ops.pack_bits(x_t, backend="cuda"), t, tp, schedule, 77, offset, packed=True,
                             backend="cuda")
    assert torch.equal(packed, ops.pack_bits(dense, backend="cuda"))
    for name in _gpu_others():
        want = ops.sample_step(logits, x_t, t, tp, schedule, 77, offset, backend=name)
        assert (dense != want).double().mean().item() < 1e-5, name
    pi = ops.posterior(logits, x_t, t, tp, schedule, backend="cuda").double()
    z = (dense.double().sum() - pi.sum()) / (pi * (1 - pi)).sum().sqrt()
    assert abs(z.item()) < 5


@gpu
@needs_cuda
def test_popcount_long_rows_and_1d(cuda_backend):
    """Few outputs over a long dim are split into segments added with integer atomics."""
    g = _gen(11)
    flat = torch.randint(0, 256, (10_000_001,), generator=g, device="cuda", dtype=torch.uint8)
    table = torch.tensor([bin(i).count("1") for i in range(256)], device="cuda")
    assert ops.popcount(flat, 0, backend="cuda").item() == table[flat.long()].sum().item()
    wide = flat[:3 * 1_000_000].view(3, 1_000_000)
    assert torch.equal(ops.popcount(wide, 1, backend="cuda"), table[wide.long()].sum(1))
    tall = flat[:1_000_000 * 2].view(1_000_000, 2)
    assert torch.equal(ops.popcount(tall, 0, backend="cuda"), table[tall.long()].sum(0))


@gpu
@needs_cuda
@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_tensors_on_a_second_device(cuda_backend):
    schedule = blkit.NoiseSchedule(64)
    logits = torch.randn(4, 256, 64, device="cuda:1")
    x_t = torch.randint(0, 2, logits.shape, device="cuda:1", dtype=torch.uint8)
    got = ops.sample_step(logits, x_t, 30, 29, schedule, 5, backend="cuda")
    want = ops.sample_step(logits.cuda(0), x_t.cuda(0), 30, 29, schedule, 5, backend="cuda")
    assert got.device == logits.device and torch.equal(got.cuda(0), want)


# =================================================================================================================
# CPU emulation of the CUDA kernels (csrc/cuda/emu)
# =================================================================================================================
@pytest.fixture(scope="session")
def emulated_module():
    plugin = sys.modules.get("emulate_cuda_backend")
    if plugin is not None:  # the whole run is on the emulation already (pytest -p emulate_cuda_backend)
        return plugin.MODULE
    if shutil.which("g++") is None:
        pytest.skip("the CUDA emulation needs g++ (C++20)")
    sys.path.insert(0, str(ROOT / "csrc" / "cuda" / "emu"))
    try:
        import build as emu_build
    finally:
        sys.path.pop(0)
    try:
        path = emu_build.build(ROOT / "build" / "cuda-emu")
    except Exception as exc:  # noqa: BLE001  (no C++20 <barrier>, no pybind11 headers, ...)
        pytest.skip(f"could not build the CUDA emulation: {exc}")
    spec = importlib.util.spec_from_file_location("blkit_cuda_emu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def emulated(emulated_module, monkeypatch):
    """backend="cuda" runs the emulated kernels on CPU tensors for the duration of a test; yields the module."""
    if "emulate_cuda_backend" not in sys.modules:
        cuda_ops = importlib.import_module("blkit._backends.cuda.ops")
        monkeypatch.setattr(cuda_ops, "_native", emulated_module)
        monkeypatch.setattr(cuda_ops, "_stream", lambda device: 0)
        monkeypatch.setattr(cuda_ops, "_launch_context", lambda device: contextlib.nullcontext())
        monkeypatch.setitem(_registry._BACKENDS, "cuda", _registry.BackendInfo(
            "cuda", devices=("cpu",), available=True, reason="CUDA kernels in the CPU emulation"))
    yield emulated_module
    emulated_module.emu_set_device(0)


emulation = pytest.mark.slow  # tens of seconds on two cores: the kernels run as fibers, one per CUDA thread


def _cpu_gen(seed):
    return torch.Generator().manual_seed(seed)


def _cpu_oracle():
    """The C++ CPU backend (bit-identical to the reference by the conformance suite, and much faster) when built."""
    info = _registry.all_backends().get("cpu")
    return ("cpu",) if info and info.available else ("reference",)


@emulation
@pytest.mark.parametrize("sms", [1, 3])
def test_emulated_bit_ops_equal_reference(emulated, sms):
    emulated.emu_set_device(sms - 1)  # grid sizes scale with the emulated SM count
    for shape in SHAPES + [(9, 300, 64), (5000, 8)]:
        check_bit_ops("cpu", shape, _cpu_gen(1), _cpu_oracle())


@emulation
@pytest.mark.parametrize("sms", [1, 3])
def test_emulated_random_bits_equal_reference(emulated, sms):
    emulated.emu_set_device(sms - 1)
    for shape in [(1, 1, 1), (1, 1, 7), (3, 5, 63), (3, 5, 64), (3, 5, 65), (3, 5, 130), (1000,), (9, 300, 64),
                  (3, 2000, 7)]:
        check_random_bits("cpu", shape, _cpu_gen(2), _cpu_oracle(), seeds=SEEDS[1:])


@emulation
def test_emulated_popcount_segments(emulated):
    g = _cpu_gen(3)
    flat = torch.randint(0, 256, (300_001,), generator=g, dtype=torch.uint8)
    assert ops.popcount(flat, 0, backend="cuda").item() == ops.popcount(flat, 0, backend="reference").item()
    for shape, dim in [((3, 70_000), 1), ((70_000, 3), 0), ((2, 5000, 3), 1)]:
        x = flat[:math.prod(shape)].view(shape)
        assert torch.equal(ops.popcount(x, dim, backend="cuda"), ops.popcount(x, dim, backend="reference"))
        assert torch.equal(ops.popcount(_misaligned(x), dim, backend="cuda"), ops.popcount(x, dim, backend="reference"))


@emulation
def test_emulated_sample_step_rounding_rule_and_cpu_bits(emulated):
    """Compiled without FMA contraction (as the CPU kernels are), the emulated kernels give the CPU backend's bits
    exactly; against the reference the rounding rule applies."""
    check_sample_step("cpu", _cpu_gen(4), exact_backend="cpu")
    check_sample_step("cpu", _cpu_gen(5), shape=(3, 1, 7), exact_backend="cpu")


@emulation
def test_emulated_sample_step_dtypes_and_unaligned(emulated):
    schedule = blkit.NoiseSchedule(64)
    g = _cpu_gen(6)
    shape = (4, 37, 64)
    logits = torch.randn(shape, generator=g)
    x_t = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    mask = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    known = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    want = ops.sample_step(logits, x_t, 30, 29, schedule, 9, mask=mask, known=known, backend="cpu")
    for dtype in BINARY_DTYPES:
        got = ops.sample_step(_misaligned(logits), _misaligned(x_t.to(dtype)), 30, 29, schedule, 9,
                              mask=_misaligned(mask.to(dtype)), known=known.to(dtype), backend="cuda")
        assert torch.equal(got, want), dtype
    pi_want = ops.posterior(logits, x_t, 30, 29, schedule, backend="cpu")
    assert torch.equal(ops.posterior(_misaligned(logits), x_t.bool(), 30, 29, schedule, backend="cuda"), pi_want)


@emulation
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_emulated_loss_and_gradient_match_reference(emulated, dtype):
    check_loss("cpu", _cpu_gen(7), dtype)
    check_loss("cpu", _cpu_gen(8), dtype, shape=(3, 1, 7))
    check_loss_input_dtypes("cpu", _cpu_gen(9))


@emulation
def test_emulated_loss_large_deterministic(emulated):
    """More chunks than threads (several loop iterations per lane, many blocks): equal to the reference, and the
    fixed-order reduction gives the same bits on every call."""
    schedule = blkit.NoiseSchedule(64)
    g = _cpu_gen(10)
    shape = (16, 256, 64)
    logits = torch.randn(shape, generator=g) * 2
    x0 = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    t = torch.randint(1, 65, (16,), generator=g)
    x_t, _ = ops.q_sample(x0, t, schedule, 1, backend="reference")
    kw = dict(gamma=2.0, weighting="weighted", aux_weight=0.1)
    got = ops.diffusion_loss(logits, x_t, x0, t, schedule, backend="cuda", **kw)
    want = ops.diffusion_loss(logits, x_t, x0, t, schedule, backend="reference", **kw)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    assert torch.equal(got, ops.diffusion_loss(logits, x_t, x0, t, schedule, backend="cuda", **kw))
