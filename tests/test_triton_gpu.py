"""Triton backend on a CUDA device (skipped without one): CUDA-graph capture and re-seeding, bit equality with
the reference backend, large sizes (16M elements; past 2**31 elements for int64 indexing: tests/test_gpu.py)."""
import pytest
import torch

import blkit
from blkit import _registry, ops

from . import oracle

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(autouse=True)
def _triton_on_cuda():
    info = _registry.backend_info("triton")
    if not info.available or "cuda" not in info.devices:
        pytest.skip(f"triton backend not available on CUDA: {info.reason}")


def _gen(seed):
    return torch.Generator(device="cuda").manual_seed(seed)


def _dev(v):
    return torch.tensor(v, dtype=torch.int64, device="cuda")


# --- CUDA graphs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("packed", [False, True])
def test_sample_step_graph_replay_reseeds(packed):
    """Capture one sample_step (seed, offset and steps in device tensors), replay with a new seed: new samples,
    equal to an eager call with that seed."""
    schedule = blkit.NoiseSchedule(64)
    g = _gen(0)
    logits = torch.randn(4, 256, 64, generator=g, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    if packed:
        x_t = ops.pack_bits(x_t, backend="triton")
    t, t_prev = _dev([40, 40, 12, 3]), _dev([39, 30, 11, 0])
    seed, offset = _dev(1), _dev(7)

    def step():
        return ops.sample_step(logits, x_t, t, t_prev, schedule, seed, offset, packed=packed, backend="triton")

    eager_first = step()  # compiles the kernel and caches the schedule tables on the device
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        step()  # warm-up on the side stream, as torch.cuda.graphs recommends
        with torch.cuda.graph(graph, stream=stream):
            out = step()
    torch.cuda.current_stream().wait_stream(stream)
    graph.replay()
    first = out.clone()
    assert torch.equal(first, eager_first)
    seed.fill_(2)
    offset.fill_(123)
    graph.replay()
    second = out.clone()
    assert not torch.equal(second, first)
    assert torch.equal(second, step())


def test_q_sample_and_bernoulli_graph_replay_reseeds():
    schedule = blkit.NoiseSchedule(64)
    x0 = torch.randint(0, 2, (8, 256, 32), generator=_gen(1), device="cuda", dtype=torch.uint8)
    probs = torch.rand(8, 256, 32, generator=_gen(2), device="cuda")
    t = _dev([1, 5, 9, 20, 33, 40, 60, 64])
    seed, offset = _dev(5), _dev(0)  # created before the capture (no host-to-device copies inside it)

    def run():
        x_t, res, flips = ops.q_sample(x0, t, schedule, seed, offset, packed=True, return_counts=True,
                                       backend="triton")
        return x_t, res, flips, ops.bernoulli(probs, seed, offset, backend="triton")

    run()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = run()
    for s in (5, 6):
        seed.fill_(s)
        graph.replay()
        want = run()
        for got, exp in zip(outs, want):
            assert torch.equal(got, exp)  # also: flips were zeroed inside the graph, not accumulated


# --- bits equal to the reference backend on CUDA ------------------------------------------------------------------
SHAPES = [(1,), (5, 7), (3, 17, 65), (64, 256, 64), (2, 9, 130)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_bernoulli_and_quantize_bits_equal_reference(shape, dtype):
    probs = torch.rand(shape, generator=_gen(3), device="cuda").to(dtype)
    for seed, offset in [(0, 0), (2**64 - 1, 2**32 - 11), (12345, 2**63)]:
        for packed in (False, True):
            got = ops.bernoulli(probs, seed, offset, packed=packed, backend="triton")
            assert torch.equal(got, ops.bernoulli(probs, seed, offset, packed=packed, backend="reference"))
        for det in (False, True):
            got = ops.binary_quantize(probs, seed, offset, deterministic=det, backend="triton")
            assert got.dtype == dtype
            assert torch.equal(got, ops.binary_quantize(probs, seed, offset, deterministic=det, backend="reference"))


@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_q_sample_bits_equal_reference(shape, per_sample, packed):
    schedule = blkit.NoiseSchedule(64, "cos")
    x0 = torch.randint(0, 2, shape, generator=_gen(4), device="cuda", dtype=torch.uint8)
    t = torch.randint(1, 65, (shape[0],), generator=_gen(5), device="cuda") if per_sample else 17
    for seed, offset in [(9, 0), (2**63 + 1, 2**32 - 3)]:
        got = ops.q_sample(x0, t, schedule, seed, offset, packed=packed, return_counts=True, backend="triton")
        want = ops.q_sample(x0, t, schedule, seed, offset, packed=packed, return_counts=True, backend="reference")
        for a, b in zip(got, want):
            assert torch.equal(a, b)


@pytest.mark.parametrize("shape", SHAPES)
def test_bit_ops_equal_reference(shape):
    bits = torch.randint(0, 2, shape, generator=_gen(6), device="cuda", dtype=torch.uint8)
    packed = ops.pack_bits(bits, backend="triton")
    assert torch.equal(packed, ops.pack_bits(bits, backend="reference"))
    for dtype in (torch.uint8, torch.bool, torch.float32, torch.bfloat16):
        assert torch.equal(ops.unpack_bits(packed, shape[-1], dtype, backend="triton"), bits.to(dtype))
    other = packed.flip(0)
    assert torch.equal(ops.xor_bits(packed, other, backend="triton"), packed ^ other)
    for dim in range(len(shape)):
        assert torch.equal(ops.popcount(packed, dim, backend="triton"), ops.popcount(packed, dim, backend="reference"))


@pytest.mark.parametrize("p_flip", [True, False])
def test_sample_step_matches_reference_up_to_rounding(p_flip):
    schedule = blkit.NoiseSchedule(64)
    g = _gen(7)
    logits = torch.randn(64, 256, 64, generator=g, device="cuda") * 3
    uncond = torch.randn(64, 256, 64, generator=g, device="cuda")
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    kw = dict(p_flip=p_flip, temperature=0.9, uncond_logits=uncond, guidance_scale=1.5)
    for t, tp in [(64, 59), (5, 1), (1, 0)]:
        got = ops.sample_step(logits, x_t, t, tp, schedule, 3, 4, backend="triton", **kw)
        want = ops.sample_step(logits, x_t, t, tp, schedule, 3, 4, backend="reference", **kw)
        assert (got != want).double().mean().item() < 1e-5
        pi = ops.posterior(logits, x_t, t, tp, schedule, backend="triton", **kw)
        expected = oracle.posterior(schedule, logits, x_t, t, tp, **kw)
        assert (pi.double() - expected).abs().max().item() < 1e-5


def test_loss_matches_float64_on_cuda():
    schedule = blkit.NoiseSchedule(64)
    g = _gen(8)
    shape = (64, 256, 64)
    logits = torch.randn(shape, generator=g, device="cuda") * 2
    x0 = torch.randint(0, 2, shape, generator=g, device="cuda", dtype=torch.uint8)
    t = torch.randint(1, 65, (64,), generator=g, device="cuda")
    x_t, _ = ops.q_sample(x0, t, schedule, 1, backend="triton")
    kw = dict(gamma=2.0, weighting="weighted", aux_weight=0.1)
    l = logits.clone().requires_grad_()
    loss = ops.diffusion_loss(l, x_t, x0, t, schedule, backend="triton", **kw)
    loss.backward()
    l64 = logits.cpu().double().requires_grad_()
    expected = oracle.loss(schedule, l64, x_t.cpu(), x0.cpu(), t.cpu(), **kw)  # float64 on the CPU
    expected.backward()
    torch.testing.assert_close(loss.cpu().double(), expected.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(l.grad.cpu().double(), l64.grad, rtol=1e-4, atol=1e-4 * l64.grad.abs().max().item())


# --- large sizes ----------------------------------------------------------------------------------------------------
def test_sample_step_16m_elements():
    """16.7M elements (256 x 256 x 256), dense and packed, per-sample steps; offsets cross 2**32."""
    schedule = blkit.NoiseSchedule(64)
    g = _gen(9)
    logits = torch.randn(256, 256, 256, generator=g, device="cuda", dtype=torch.bfloat16)
    x_t = torch.randint(0, 2, logits.shape, generator=g, device="cuda", dtype=torch.uint8)
    t = torch.randint(2, 65, (256,), generator=g, device="cuda")
    tp = t - 1
    offset = 2**32 - 5_000_000
    dense = ops.sample_step(logits, x_t, t, tp, schedule, 77, offset, backend="triton")
    packed = ops.sample_step(logits, ops.pack_bits(x_t, backend="triton"), t, tp, schedule, 77, offset, packed=True,
                             backend="triton")
    assert torch.equal(packed, ops.pack_bits(dense, backend="triton"))
    want = ops.sample_step(logits, x_t, t, tp, schedule, 77, offset, backend="reference")
    assert (dense != want).double().mean().item() < 1e-5
    pi = ops.posterior(logits, x_t, t, tp, schedule, backend="triton").double()
    z = (dense.double().sum() - pi.sum()) / (pi * (1 - pi)).sum().sqrt()
    assert abs(z.item()) < 5

