"""GPU-only checks of the op layer (skipped without CUDA): CUDA-graph capture with the seed in device memory,
and bit equality between every CUDA backend and the reference backend, int64 indexing past 2**31 elements."""
import math

import pytest
import torch

import blkit
from blkit import _registry, ops

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA_BACKENDS = [name for name, info in _registry.all_backends().items()
                 if info.available and "cuda" in info.devices]


@pytest.mark.parametrize("backend", CUDA_BACKENDS)
def test_cuda_graph_replay_with_new_seed(backend):
    """A captured sample_step replayed after writing a new seed into the device tensor draws new numbers,
    identical to an eager call with that seed."""
    if not _registry.implements("sample_step", backend):
        pytest.skip(f"{backend} has no sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits = torch.randn(8, 256, 64, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, device="cuda", dtype=torch.uint8)
    seed = torch.tensor(1, dtype=torch.int64, device="cuda")
    t = torch.full((8,), 30, device="cuda")

    def step():
        return ops.sample_step(logits, x_t, t, t - 3, schedule, seed, backend=backend)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # warm-up outside capture (compiles kernels, caches tables)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    results = []
    for new_seed in (11, 12):
        seed.fill_(new_seed)
        graph.replay()
        torch.cuda.synchronize()
        results.append(out.clone())
        eager = ops.sample_step(logits, x_t, t, t - 3, schedule, new_seed, backend=backend)
        assert torch.equal(out, eager)
    assert not torch.equal(results[0], results[1])


@pytest.mark.parametrize("backend", CUDA_BACKENDS)
def test_cuda_random_ops_match_reference_bits(backend):
    probs = torch.rand(3, 1000, 65, device="cuda")
    x0 = torch.randint(0, 2, (3, 1000, 65), device="cuda", dtype=torch.uint8)
    schedule = blkit.NoiseSchedule(64)
    for op, call in [
        ("bernoulli", lambda b: ops.bernoulli(probs, 5, 2**32 - 7, backend=b)),
        ("bernoulli", lambda b: ops.bernoulli(probs, 5, 3, packed=True, backend=b)),
        ("q_sample", lambda b: ops.q_sample(x0, torch.tensor([1, 30, 64], device="cuda"), schedule, 9,
                                            return_counts=True, backend=b)),
        ("binary_quantize", lambda b: ops.binary_quantize(probs, 8, backend=b)),
    ]:
        if not _registry.implements(op, backend):
            continue
        got, want = call(backend), call("reference")
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert torch.equal(g, w), op


@pytest.mark.parametrize("backend", [name for name in CUDA_BACKENDS if name != "reference"])
def test_int64_indexing_past_2_31_elements(backend):
    """A packed sample_step over 2**31 + 2**20 elements: the last rows equal a separate call on just those rows
    with the stream offset moved to their first element (the flat index is int64 end to end)."""
    if torch.cuda.get_device_properties(0).total_memory < 24 * 2**30:
        pytest.skip("needs 24 GiB of device memory")
    schedule = blkit.NoiseSchedule(64)
    channels = 64
    rows = (2**31 + 2**20) // channels
    gen = torch.Generator(device="cuda").manual_seed(10)
    logits = torch.empty(rows, channels, device="cuda", dtype=torch.bfloat16).normal_(generator=gen)
    x_t = torch.randint(0, 256, (rows, channels // 8), generator=gen, device="cuda", dtype=torch.uint8)
    out = ops.sample_step(logits, x_t, 30, 29, schedule, 5, 0, packed=True, backend=backend)
    tail = 4096
    start = (rows - tail) * channels
    want = ops.sample_step(logits[-tail:], x_t[-tail:], 30, 29, schedule, 5, start, packed=True, backend=backend)
    assert torch.equal(out[-tail:], want)
    ref = ops.sample_step(logits[-tail:], x_t[-tail:], 30, 29, schedule, 5, start, packed=True, backend="reference")
    mismatch = ops.popcount(ref ^ want, dim=-1, backend=backend).sum().item()
    assert mismatch <= math.ceil(1e-4 * tail * channels)
    del logits, out
    x0 = torch.zeros(rows, channels, device="cuda", dtype=torch.bool)
    _, residual, flips = ops.q_sample(x0, 64, schedule, 5, packed=True, return_counts=True, backend=backend)
    assert flips.shape == (rows,) and torch.equal(flips, ops.popcount(residual, backend=backend))
