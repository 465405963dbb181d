"""diffusion_loss (DESIGN §1.3): value and gradient against a float64 oracle and the authors' program."""
import itertools

import pytest
import torch

import blkit
from blkit import ops
from blkit import reference as authors

from . import oracle

OPTIONS = [
    dict(p_flip=p_flip, balance=balance, gamma=gamma, weighting=weighting, aux_weight=aux)
    for p_flip, balance, gamma, weighting, aux in itertools.product(
        [True, False], [True, False], [0.0, 2.0], ["mean", "weighted"], [0.0, 0.1])
]


def _option_id(o):
    return "-".join(f"{k}={v}" for k, v in o.items())


def _batch(shape=(4, 9, 33), seed=0, per_sample=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(shape, generator=g) * 2).to(dtype)
    x0 = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    x_t = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    t = torch.tensor([1, 64, 17, 2])[: shape[0]] if per_sample else 17
    return logits, x_t, x0, t


@pytest.mark.parametrize("options", OPTIONS, ids=_option_id)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_value_and_gradient_against_float64(target, options, reduction):
    """Value within 1e-5 relative; gradient within 1e-4 of its largest element (float32 math)."""
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = _batch(seed=len(_option_id(options)))
    dev = target.device
    l = logits.to(dev).clone().requires_grad_()
    tt = t.to(dev) if isinstance(t, torch.Tensor) else t
    loss = ops.diffusion_loss(l, x_t.to(dev), x0.to(dev), tt, schedule, reduction=reduction,
                              backend=target.backend, **options)
    l64 = logits.detach().double().requires_grad_()
    expected = oracle.loss(schedule, l64, x_t, x0, t, reduction=reduction, **options)
    assert loss.dtype == torch.float32 and loss.shape == expected.shape
    torch.testing.assert_close(loss.detach().cpu().double(), expected.detach(), rtol=1e-5, atol=1e-7)
    grad_out = torch.rand(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss.backward(grad_out.to(dev, torch.float32))
    expected.backward(grad_out)
    scale = l64.grad.abs().max().item()
    assert l.grad.dtype == logits.dtype
    torch.testing.assert_close(l.grad.cpu().double(), l64.grad, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_loss_low_precision_logits(target, dtype):
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64, "cos")
    logits, x_t, x0, t = _batch(dtype=dtype)
    l = logits.to(target.device).clone().requires_grad_()
    loss = ops.diffusion_loss(l, x_t.to(target.device), x0.to(target.device), t.to(target.device), schedule,
                              aux_weight=0.1, backend=target.backend)
    loss.backward()
    l64 = logits.detach().double().requires_grad_()
    expected = oracle.loss(schedule, l64, x_t, x0, t, aux_weight=0.1)
    expected.backward()
    torch.testing.assert_close(loss.detach().cpu().double(), expected.detach(), rtol=1e-5, atol=1e-7)
    assert l.grad.dtype == dtype  # gradient in the logits' dtype, computed in float32
    torch.testing.assert_close(l.grad.cpu().double(), l64.grad, rtol=1e-2, atol=1e-2 * l64.grad.abs().max().item())


def test_loss_scalar_t_and_non_contiguous(target):
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64, "sigmoid")
    logits, x_t, x0, _ = _batch(shape=(33, 9, 4), seed=4)
    lv, xv, x0v = (v.transpose(0, 2) for v in (logits, x_t, x0))  # [4, 9, 33] views
    got = ops.diffusion_loss(lv.to(target.device), xv.to(target.device), x0v.to(target.device), 30, schedule,
                             gamma=1.0, weighting="weighted", aux_weight=0.2, backend=target.backend)
    expected = oracle.loss(schedule, lv, xv, x0v, 30, gamma=1.0, weighting="weighted", aux_weight=0.2)
    torch.testing.assert_close(got.cpu().double(), expected, rtol=1e-5, atol=1e-7)


def test_loss_no_grad_path(target):
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = _batch()
    with torch.no_grad():
        a = ops.diffusion_loss(logits.to(target.device).requires_grad_(), x_t.to(target.device),
                               x0.to(target.device), t.to(target.device), schedule, backend=target.backend)
    b = ops.diffusion_loss(logits.to(target.device), x_t.to(target.device), x0.to(target.device),
                           t.to(target.device), schedule, backend=target.backend)
    assert not a.requires_grad and torch.equal(a, b)


def test_loss_backward_retained_graph_and_scaled_seed(target):
    """Backward twice through a retained graph accumulates (the saved derivative stays private), a seed of 2.5
    scales the gradient, and a loss that is only one term of a sum still gets its gradient."""
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = (v.to(target.device) for v in _batch())
    logits.requires_grad_()
    loss = ops.diffusion_loss(logits, x_t, x0, t, schedule, backend=target.backend)
    loss.backward(retain_graph=True)
    once = logits.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(logits.grad, 3 * once, rtol=1e-6, atol=0)
    logits.grad = None
    (2.5 * ops.diffusion_loss(logits, x_t, x0, t, schedule, backend=target.backend)).backward()
    torch.testing.assert_close(logits.grad, 2.5 * once, rtol=1e-6, atol=0)
    logits.grad = None
    other = logits.detach().clone().requires_grad_()
    (ops.diffusion_loss(logits, x_t, x0, t, schedule, backend=target.backend) + other.sum()).backward()
    torch.testing.assert_close(logits.grad, once, rtol=0, atol=0)


def test_loss_backward_hands_out_its_derivative_once(target):
    """The first backward hands the saved derivative out as the gradient; what the user then does to it in place
    (zero_grad without set_to_none, an optimizer's update) does not reach a retained graph's next backward, nor a
    create_graph backward (which stays differentiable in its seed)."""
    target.require("diffusion_loss")
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = (v.to(target.device) for v in _batch())
    logits.requires_grad_()
    loss = ops.diffusion_loss(logits, x_t, x0, t, schedule, reduction="none", backend=target.backend)
    seed = torch.rand(logits.shape, device=target.device)
    (first,) = torch.autograd.grad(loss, logits, seed, retain_graph=True)
    expected = first.clone()
    first.fill_(float("nan"))  # poison what was handed out
    (second,) = torch.autograd.grad(loss, logits, seed, retain_graph=True)
    torch.testing.assert_close(second, expected, rtol=0, atol=0)
    seed.requires_grad_()
    (third,) = torch.autograd.grad(loss, logits, seed, create_graph=True)
    assert third.requires_grad
    torch.testing.assert_close(third, expected, rtol=0, atol=0)
    (d_seed,) = torch.autograd.grad(third.sum(), seed)
    torch.testing.assert_close(d_seed * seed.detach(), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS, ids=_option_id)
def test_loss_agrees_with_reference_program(options):
    """blkit.ops and the authors' loss agree within 1e-5 relative for every option."""
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = _batch(shape=(4, 16, 32), seed=9)
    stats = authors.loss_from_logits(logits, x0.float(), x_t.float(), t, authors.Scheduler(64), **options)
    got = ops.diffusion_loss(logits, x_t, x0, t, schedule, **options)
    torch.testing.assert_close(got, stats["loss"], rtol=1e-5, atol=0)


def test_loss_under_autocast():
    """Works under autocast with the aux term (the authors' F.binary_cross_entropy refuses autocast on CUDA)."""
    schedule = blkit.NoiseSchedule(64)
    logits, x_t, x0, t = _batch()
    weight = torch.randn(33, 33, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = logits @ weight
        assert out.dtype == torch.bfloat16
        loss = ops.diffusion_loss(out, x_t, x0, t, schedule, aux_weight=0.1)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(weight.grad).all()
