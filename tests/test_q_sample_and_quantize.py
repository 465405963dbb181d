"""q_sample (DESIGN §1.2) and binary_quantize (§1.5): exact bits from the shared stream."""
import pytest
import torch

import blkit
from blkit import ops
from blkit._backends.reference.ops import uniforms


def _x0(shape, seed=0):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _expected_q_sample(schedule, x0, t, seed, offset):
    """x_t = (u < p) with p = float32(b[t]) or float32(k[t] + b[t]) rounded from float64 (no math in float32)."""
    t = torch.as_tensor(t).reshape(-1, *([1] * (x0.dim() - 1)))
    p0 = schedule.b[t].float()
    p1 = (schedule.k[t] + schedule.b[t]).float()
    p = torch.where(x0 != 0, p1, p0)
    x_t = (uniforms(torch.tensor([seed, offset]), x0.shape) < p).to(torch.uint8)
    return x_t, x_t ^ x0


@pytest.mark.parametrize("channels", [1, 7, 63, 64, 65, 130])
@pytest.mark.parametrize("per_sample", [False, True])
def test_q_sample_bits(target, channels, per_sample):
    target.require("q_sample")
    schedule = blkit.NoiseSchedule(64, "cos")
    x0 = _x0((3, 5, channels), seed=channels)
    t = torch.tensor([1, 33, 64]) if per_sample else 20
    tt = t.to(target.device) if per_sample else t
    x_t, residual, flips = ops.q_sample(x0.to(target.device), tt, schedule, 77, 2**32 - 9, return_counts=True,
                                        backend=target.backend)
    ex_t, ex_r = _expected_q_sample(schedule, x0, t, 77, 2**32 - 9)
    assert torch.equal(x_t.cpu(), ex_t) and torch.equal(residual.cpu(), ex_r)
    assert torch.equal(flips.cpu(), ex_r.reshape(3, -1).sum(1))


def test_q_sample_packed(target):
    target.require("q_sample")
    schedule = blkit.NoiseSchedule(64)
    x0 = _x0((4, 6, 13))
    dense = ops.q_sample(x0.to(target.device), 40, schedule, 5, backend=target.backend)
    packed = ops.q_sample(x0.to(target.device), 40, schedule, 5, packed=True, backend=target.backend)
    for d, p in zip(dense, packed):
        assert torch.equal(ops.pack_bits(d.cpu()), p.cpu())


def test_q_sample_float_and_bool_inputs(target):
    target.require("q_sample")
    schedule = blkit.NoiseSchedule(64)
    x0 = _x0((2, 3, 9))
    outs = [ops.q_sample(v.to(target.device), 7, schedule, 1, backend=target.backend)[0].cpu()
            for v in (x0, x0.bool(), x0.float())]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_q_sample_extremes(target):
    """t = T keeps nothing (p = 1/2 either way); t = 1 at T = 1 too; the residual is always x_t XOR x0."""
    target.require("q_sample")
    schedule = blkit.NoiseSchedule(1)
    x0 = _x0((2, 1000))
    x_t, r = ops.q_sample(x0.to(target.device), 1, schedule, 3, backend=target.backend)
    assert abs(x_t.float().mean().item() - 0.5) < 0.05
    assert torch.equal(r.cpu(), x_t.cpu() ^ x0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("deterministic", [False, True])
def test_binary_quantize(target, dtype, deterministic):
    target.require("binary_quantize")
    probs = torch.rand(2, 7, 5, 3, generator=torch.Generator().manual_seed(2)).to(dtype)
    z = ops.binary_quantize(probs.to(target.device), 11, 4, deterministic=deterministic, backend=target.backend)
    assert z.dtype == dtype and z.shape == probs.shape
    pf = probs.float()
    expected = (pf > 0.5) if deterministic else uniforms(torch.tensor([11, 4]), probs.shape) < pf
    assert torch.equal(z.cpu(), expected.to(dtype))


def test_binary_quantize_straight_through_gradient(target):
    target.require("binary_quantize")
    probs = torch.rand(4, 6, device=target.device, requires_grad=True)
    z = ops.binary_quantize(probs, 0, backend=target.backend)
    upstream = torch.randn(4, 6, device=target.device)
    (z * upstream).sum().backward()
    assert torch.equal(probs.grad, upstream)


def test_binary_quantize_matches_bernoulli(target):
    target.require("binary_quantize")
    target.require("bernoulli")
    probs = torch.rand(3, 64, device=target.device)
    z = ops.binary_quantize(probs, 5, 6, backend=target.backend)
    assert torch.equal(z.to(torch.uint8), ops.bernoulli(probs, 5, 6, backend=target.backend))
