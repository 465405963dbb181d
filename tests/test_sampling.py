"""posterior and sample_step (DESIGN §1.4) against a float64 oracle, the reference program, and the stream."""
import pytest
import torch

import blkit
from blkit import ops
from blkit import reference as authors
from blkit._backends.reference.ops import uniforms

from . import oracle

KINDS = ["linear", "cos", "sigmoid"]
# (t, t') pairs: one step, skipped steps, the last step, the first step of the chain
STEPS = [(64, 63), (64, 59), (30, 26), (13, 9), (5, 1), (2, 1), (1, 0), (9, 0)]


def _inputs(shape=(3, 17, 65), dtype=torch.float32, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(shape, generator=g) * scale).to(dtype)
    x_t = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    return logits, x_t


def _ref_error(schedule, logits, x_t, t, tp, **kw):
    """Max |error| of the authors' float32 program against the float64 oracle, the yardstick for blkit."""
    sched = authors.Scheduler(schedule.num_steps, schedule.kind)
    ref = authors.posterior(logits.float(), x_t.float(), t, tp, sched, temp=kw.get("temperature", 1.0),
                            p_flip=kw.get("p_flip", True), uncond_logits=kw.get("uncond_logits"),
                            guidance=kw.get("guidance_scale", 0.0))
    return (ref.double() - oracle.posterior(schedule, logits, x_t, t, tp, **kw)).abs().max().item()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t,tp", STEPS)
@pytest.mark.parametrize("p_flip", [True, False])
def test_posterior_against_float64(target, kind, t, tp, p_flip):
    """Error against float64 at most 2x the authors' own float32 error (+ 2 ulp of 1 for ties at 0)."""
    target.require("posterior")
    schedule = blkit.NoiseSchedule(64, kind)
    logits, x_t = _inputs(seed=t)
    got = ops.posterior(logits.to(target.device), x_t.to(target.device), t, tp, schedule, p_flip=p_flip,
                        backend=target.backend).cpu()
    assert got.dtype == torch.float32 and got.shape == logits.shape
    expected = oracle.posterior(schedule, logits, x_t, t, tp, p_flip=p_flip)
    error = (got.double() - expected).abs().max().item()
    assert error <= 2 * _ref_error(schedule, logits, x_t, t, tp, p_flip=p_flip) + 2.4e-7


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_posterior_low_precision_logits(target, dtype):
    target.require("posterior")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(dtype=dtype)
    got = ops.posterior(logits.to(target.device), x_t.to(target.device), 40, 31, schedule,
                        backend=target.backend).cpu()
    expected = oracle.posterior(schedule, logits, x_t, 40, 31)  # oracle sees the same rounded logits
    error = (got.double() - expected).abs().max().item()
    assert error <= 2 * _ref_error(schedule, logits, x_t, 40, 31) + 2.4e-7


def test_posterior_guidance_and_temperature(target):
    target.require("posterior")
    schedule = blkit.NoiseSchedule(64, "cos")
    logits, x_t = _inputs(seed=3)
    uncond, _ = _inputs(seed=4)
    kw = dict(temperature=0.7, uncond_logits=uncond, guidance_scale=1.5)
    got = ops.posterior(logits.to(target.device), x_t.to(target.device), 50, 45, schedule,
                        backend=target.backend, **{**kw, "uncond_logits": uncond.to(target.device)}).cpu()
    expected = oracle.posterior(schedule, logits, x_t, 50, 45, **kw)
    assert (got.double() - expected).abs().max().item() <= 2 * _ref_error(schedule, logits, x_t, 50, 45, **kw) + 2.4e-7


def test_posterior_per_sample_steps(target):
    """t and t_prev as int64 [B]: each sample takes its own step, the last ones included."""
    target.require("posterior")
    schedule = blkit.NoiseSchedule(64, "sigmoid")
    logits, x_t = _inputs(shape=(4, 9, 33), seed=5)
    t = torch.tensor([64, 30, 1, 12])
    tp = torch.tensor([59, 29, 0, 0])
    got = ops.posterior(logits.to(target.device), x_t.to(target.device), t.to(target.device), tp.to(target.device),
                        schedule, backend=target.backend).cpu()
    for b in range(4):
        single = ops.posterior(logits[b:b + 1].to(target.device), x_t[b:b + 1].to(target.device), int(t[b]),
                               int(tp[b]), schedule, backend=target.backend).cpu()
        assert torch.equal(got[b:b + 1], single)


def test_posterior_packed_state(target):
    target.require("posterior")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(shape=(2, 5, 63))
    packed = ops.pack_bits(x_t)
    dense = ops.posterior(logits.to(target.device), x_t.to(target.device), 20, 10, schedule, backend=target.backend)
    via_packed = ops.posterior(logits.to(target.device), packed.to(target.device), 20, 10, schedule, packed=True,
                               backend=target.backend)
    assert torch.equal(dense, via_packed)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("t,tp", [(64, 59), (64, 48), (17, 13), (5, 1), (1, 0)])
def test_posterior_agrees_with_reference_program(kind, t, tp):
    """blkit.reference (the authors' chain of one-step calls) and blkit.ops agree within 5e-5."""
    schedule = blkit.NoiseSchedule(64, kind)
    logits, x_t = _inputs(seed=11)
    ref = authors.posterior(logits, x_t.float(), t, tp, authors.Scheduler(64, kind))
    got = ops.posterior(logits, x_t, t, tp, schedule)
    assert (ref - got).abs().max().item() <= 5e-5


# --- sample_step --------------------------------------------------------------------------------
def _step_expectation(schedule, logits, x_t, t, tp, seed, offset, **kw):
    """(expected bits, undecided mask): u < pi in float64, undecided where u is within 1e-5 of pi."""
    pi = oracle.posterior(schedule, logits, x_t, t, tp, **kw)
    u = uniforms(torch.tensor([seed, offset]), logits.shape).double()
    if tp == 0:
        return (pi > 0.5).to(torch.uint8), (pi - 0.5).abs() < 1e-6
    return (u < pi).to(torch.uint8), (u - pi).abs() < 1e-5


@pytest.mark.parametrize("t,tp", [(64, 63), (64, 59), (9, 5), (1, 0)])
@pytest.mark.parametrize("p_flip", [True, False])
@pytest.mark.parametrize("channels", [1, 7, 64, 65])
def test_sample_step_follows_stream(target, t, tp, p_flip, channels):
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(shape=(3, 11, channels), seed=channels)
    got = ops.sample_step(logits.to(target.device), x_t.to(target.device), t, tp, schedule, 1234, 99,
                          p_flip=p_flip, backend=target.backend).cpu()
    assert got.dtype == torch.uint8 and got.shape == logits.shape
    expected, undecided = _step_expectation(schedule, logits, x_t, t, tp, 1234, 99, p_flip=p_flip)
    assert torch.equal(got[~undecided], expected[~undecided])
    assert undecided.double().mean() < 1e-3


def test_sample_step_dense_inputs_of_any_dtype_agree(target):
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(16)
    logits, x_t = _inputs(shape=(2, 8, 16))
    outs = [ops.sample_step(logits.to(target.device), x.to(target.device), 9, 4, schedule, 5,
                            backend=target.backend).cpu() for x in (x_t, x_t.bool(), x_t.float())]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("channels", [7, 64, 130])
def test_sample_step_packed_equals_dense(target, channels):
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64, "cos")
    logits, x_t = _inputs(shape=(2, 9, channels), seed=2)
    dense = ops.sample_step(logits.to(target.device), x_t.to(target.device), 33, 30, schedule, 8,
                            backend=target.backend).cpu()
    packed = ops.sample_step(logits.to(target.device), ops.pack_bits(x_t).to(target.device), 33, 30, schedule, 8,
                             packed=True, backend=target.backend).cpu()
    assert torch.equal(packed, ops.pack_bits(dense))


def test_sample_step_inpainting(target):
    """Where mask = 1 the output is known; mask/known [N, C] broadcast over the batch as the authors pass them."""
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(shape=(4, 10, 12), seed=6)
    g = torch.Generator().manual_seed(7)
    mask = torch.randint(0, 2, (10, 12), generator=g, dtype=torch.uint8)
    known = torch.randint(0, 2, (10, 12), generator=g).float()
    free = ops.sample_step(logits, x_t, 20, 19, schedule, 3, backend="reference")
    for tp in (19, 0):
        got = ops.sample_step(logits.to(target.device), x_t.to(target.device), 20, tp, schedule, 3,
                              mask=mask.to(target.device), known=known.to(target.device), backend=target.backend).cpu()
        m = mask.bool().expand_as(got)
        assert torch.equal(got[m], known.to(torch.uint8).expand_as(got)[m])
        if tp == 19:
            assert torch.equal(got[~m], free[~m])


def test_sample_step_guidance(target):
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(seed=8)
    uncond, _ = _inputs(seed=9)
    kw = dict(temperature=0.8, guidance_scale=2.0)
    got = ops.sample_step(logits.to(target.device), x_t.to(target.device), 40, 35, schedule, 21,
                          uncond_logits=uncond.to(target.device), backend=target.backend, **kw).cpu()
    expected, undecided = _step_expectation(schedule, logits, x_t, 40, 35, 21, 0, uncond_logits=uncond, **kw)
    assert torch.equal(got[~undecided], expected[~undecided])


def test_sample_step_last_step_ties_give_zero(target):
    """At t' = 0 with |l| so small that sigmoid rounds to 0.5, phat = 0.5 and both states give 0."""
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits = torch.tensor([[1e-9, -1e-9, 0.0, 0.0]])
    x_t = torch.tensor([[0, 1, 0, 1]], dtype=torch.uint8)
    got = ops.sample_step(logits.to(target.device), x_t.to(target.device), 1, 0, schedule, 0,
                          backend=target.backend).cpu()
    assert got.tolist() == [[0, 0, 0, 0]]


def test_sample_step_non_contiguous(target):
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t = _inputs(shape=(12, 6, 3), seed=12)
    lv, xv = logits.permute(2, 1, 0), x_t.permute(2, 1, 0)
    got = ops.sample_step(lv.to(target.device), xv.to(target.device), 10, 8, schedule, 4,
                          backend=target.backend).cpu()
    ref = ops.sample_step(lv.contiguous(), xv.contiguous(), 10, 8, schedule, 4, backend="reference")
    assert torch.equal(got, ref)
