"""Bad inputs (DESIGN §4, §6): every public op rejects them with a ValueError or TypeError that names the argument.

Each row of ``CASES`` is one call that must fail before anything is dispatched to a kernel. The message check
is a whole-word match of the argument's name, so ``b`` is not satisfied by the "b" inside "bits".
"""
import re

import pytest
import torch

import blkit
from blkit import _registry, ops

T = 16
SCHED = blkit.NoiseSchedule(T)
B, N, C = 2, 3, 10  # C = 10: two packed bytes, the last one with padding bits
W = (C + 7) // 8

# A second device for the device-mismatch rows: a GPU when there is one, else PyTorch's data-less "meta" device
# (validation compares devices before it reads any value, so meta tensors are enough to reach the check).
OTHER_DEVICE = "cuda" if torch.cuda.is_available() else "meta"


def logits(*shape, dtype=torch.float32, device="cpu"):
    shape = shape or (B, N, C)
    if device == "meta":
        return torch.zeros(shape, dtype=dtype, device=device)
    return torch.linspace(-3, 3, int(torch.Size(shape).numel())).reshape(shape).to(dtype=dtype, device=device)


def bits(*shape, dtype=torch.uint8, device="cpu"):
    shape = shape or (B, N, C)
    return (torch.arange(int(torch.Size(shape).numel())) % 3 == 0).reshape(shape).to(dtype=dtype, device=device)


def packed(*shape, device="cpu"):
    shape = shape or (B, N, W)
    return (torch.arange(int(torch.Size(shape).numel())) * 37 % 256).to(torch.uint8).reshape(shape).to(device)


def probs(*shape, dtype=torch.float32):
    shape = shape or (B, N, C)
    return torch.linspace(0, 1, int(torch.Size(shape).numel())).reshape(shape).to(dtype)


def with_value(x, index, value):
    x = x.clone()
    x.view(-1)[index] = value
    return x


def step_call(op="posterior", **kw):
    """posterior / sample_step with valid defaults; ``kw`` overrides one argument."""
    args = dict(logits=logits(), x_t=bits(), t=5, t_prev=4, schedule=SCHED)
    if op == "sample_step":
        args["seed"] = 0
    args.update(kw)
    return getattr(ops, op)(**args)


def loss_call(**kw):
    args = dict(logits=logits(), x_t=bits(), x0=bits(), t=5, schedule=SCHED)
    args.update(kw)
    return ops.diffusion_loss(**args)


def q_call(**kw):
    args = dict(x0=bits(), t=5, schedule=SCHED, seed=0)
    args.update(kw)
    return ops.q_sample(**args)


def case(id, fn, exc, name):
    return pytest.param(fn, exc, name, id=id)


CASES = [
    # --- pack_bits ---------------------------------------------------------------------------------------------
    case("pack_bits-list-input", lambda: ops.pack_bits([[0, 1, 1]]), TypeError, "bits"),
    case("pack_bits-complex-dtype", lambda: ops.pack_bits(torch.zeros(2, 8, dtype=torch.complex64)), TypeError,
         "bits"),
    case("pack_bits-0d", lambda: ops.pack_bits(torch.tensor(1, dtype=torch.uint8)), ValueError, "bits"),
    # --- unpack_bits -------------------------------------------------------------------------------------------
    case("unpack_bits-float-packed", lambda: ops.unpack_bits(packed().float(), C), TypeError, "packed"),
    case("unpack_bits-bool-packed", lambda: ops.unpack_bits(packed() != 0, C), TypeError, "packed"),
    case("unpack_bits-list-packed", lambda: ops.unpack_bits([[1, 2]], 16), TypeError, "packed"),
    case("unpack_bits-num_bits-too-wide", lambda: ops.unpack_bits(packed(), 17), ValueError, "num_bits"),
    case("unpack_bits-num_bits-too-narrow", lambda: ops.unpack_bits(packed(), 8), ValueError, "num_bits"),
    case("unpack_bits-num_bits-negative", lambda: ops.unpack_bits(packed(B, N, 0), -1), ValueError, "num_bits"),
    case("unpack_bits-num_bits-float", lambda: ops.unpack_bits(packed(), 10.0), TypeError, "num_bits"),
    case("unpack_bits-bad-dtype", lambda: ops.unpack_bits(packed(), C, dtype=torch.complex64), TypeError, "dtype"),
    case("unpack_bits-dtype-string", lambda: ops.unpack_bits(packed(), C, dtype="uint8"), TypeError, "dtype"),
    # --- xor_bits ----------------------------------------------------------------------------------------------
    case("xor_bits-shape-mismatch", lambda: ops.xor_bits(packed(), packed(B, N, W + 1)), ValueError, "b"),
    case("xor_bits-dtype-mismatch", lambda: ops.xor_bits(bits(), bits(dtype=torch.bool)), TypeError, "b"),
    case("xor_bits-list-a", lambda: ops.xor_bits([0, 1], bits(2)), TypeError, "a"),
    case("xor_bits-list-b", lambda: ops.xor_bits(bits(2), [0, 1]), TypeError, "b"),
    case("xor_bits-device-mismatch",
         lambda: ops.xor_bits(packed(), packed(device=OTHER_DEVICE)), ValueError, "b"),
    # --- popcount ----------------------------------------------------------------------------------------------
    case("popcount-dim-too-large", lambda: ops.popcount(packed(), dim=3), ValueError, "dim"),
    case("popcount-dim-too-small", lambda: ops.popcount(packed(), dim=-4), ValueError, "dim"),
    case("popcount-dim-float", lambda: ops.popcount(packed(), dim=1.0), TypeError, "dim"),
    case("popcount-float-packed", lambda: ops.popcount(packed().float()), TypeError, "packed"),
    case("popcount-0d", lambda: ops.popcount(torch.tensor(3, dtype=torch.uint8)), ValueError, "packed"),
    # --- bernoulli ---------------------------------------------------------------------------------------------
    case("bernoulli-int64-probs", lambda: ops.bernoulli(bits(dtype=torch.int64), 0), TypeError, "probs"),
    case("bernoulli-list-probs", lambda: ops.bernoulli([0.5, 0.5], 0), TypeError, "probs"),
    case("bernoulli-nan", lambda: ops.bernoulli(with_value(probs(), 7, float("nan")), 0), ValueError, "probs"),
    case("bernoulli-inf", lambda: ops.bernoulli(with_value(probs(), 0, float("inf")), 0), ValueError, "probs"),
    case("bernoulli-above-1", lambda: ops.bernoulli(with_value(probs(), 3, 1.5), 0), ValueError, "probs"),
    case("bernoulli-below-0", lambda: ops.bernoulli(with_value(probs(), 3, -0.25), 0), ValueError, "probs"),
    case("bernoulli-nan-float16",
         lambda: ops.bernoulli(with_value(probs(dtype=torch.float16), 1, float("nan")), 0), ValueError, "probs"),
    case("bernoulli-packed-0d", lambda: ops.bernoulli(torch.tensor(0.5), 0, packed=True), ValueError, "probs"),
    case("bernoulli-packed-not-bool", lambda: ops.bernoulli(probs(), 0, packed=1), TypeError, "packed"),
    case("bernoulli-seed-negative", lambda: ops.bernoulli(probs(), -1), ValueError, "seed"),
    case("bernoulli-seed-2**64", lambda: ops.bernoulli(probs(), 2**64), ValueError, "seed"),
    case("bernoulli-seed-float", lambda: ops.bernoulli(probs(), 1.0), TypeError, "seed"),
    case("bernoulli-seed-bool", lambda: ops.bernoulli(probs(), True), TypeError, "seed"),
    case("bernoulli-seed-int32-tensor", lambda: ops.bernoulli(probs(), torch.tensor([1], dtype=torch.int32)),
         TypeError, "seed"),
    case("bernoulli-offset-negative", lambda: ops.bernoulli(probs(), 0, -1), ValueError, "offset"),
    case("bernoulli-offset-overflow", lambda: ops.bernoulli(probs(), 0, 2**64 - B * N * C + 1), ValueError,
         "offset"),
    case("bernoulli-offset-float", lambda: ops.bernoulli(probs(), 0, 0.0), TypeError, "offset"),
    case("bernoulli-offset-2-element-tensor", lambda: ops.bernoulli(probs(), 0, torch.tensor([0, 1])), TypeError,
         "offset"),
    # --- q_sample ----------------------------------------------------------------------------------------------
    case("q_sample-t-0", lambda: q_call(t=0), ValueError, "t"),
    case("q_sample-t-T+1", lambda: q_call(t=T + 1), ValueError, "t"),
    case("q_sample-t-float", lambda: q_call(t=3.0), TypeError, "t"),
    case("q_sample-t-tensor-bad-value", lambda: q_call(t=torch.tensor([3, T + 1])), ValueError, "t"),
    case("q_sample-t-tensor-zero", lambda: q_call(t=torch.tensor([0, 3])), ValueError, "t"),
    case("q_sample-t-tensor-wrong-length", lambda: q_call(t=torch.tensor([3, 3, 3])), ValueError, "t"),
    case("q_sample-t-int32-tensor", lambda: q_call(t=torch.tensor([3, 3], dtype=torch.int32)), TypeError, "t"),
    case("q_sample-t-float-tensor", lambda: q_call(t=torch.tensor([3.0, 3.0])), TypeError, "t"),
    case("q_sample-schedule-int", lambda: q_call(schedule=T), TypeError, "schedule"),
    case("q_sample-x0-list", lambda: q_call(x0=[[0, 1]]), TypeError, "x0"),
    case("q_sample-x0-0d", lambda: q_call(x0=torch.tensor(1)), ValueError, "x0"),
    case("q_sample-seed-negative", lambda: q_call(seed=-5), ValueError, "seed"),
    case("q_sample-packed-not-bool", lambda: q_call(packed="yes"), TypeError, "packed"),
    # --- posterior ---------------------------------------------------------------------------------------------
    case("posterior-int64-logits", lambda: step_call(logits=bits(dtype=torch.int64)), TypeError, "logits"),
    case("posterior-float64-logits", lambda: step_call(logits=logits(dtype=torch.float64)), TypeError, "logits"),
    case("posterior-list-logits", lambda: step_call(logits=[[0.0] * C]), TypeError, "logits"),
    case("posterior-x_t-shape", lambda: step_call(x_t=bits(B, N, C + 1)), ValueError, "x_t"),
    case("posterior-x_t-complex", lambda: step_call(x_t=bits().to(torch.complex64)), TypeError, "x_t"),
    case("posterior-x_t-list", lambda: step_call(x_t=bits().tolist()), TypeError, "x_t"),
    case("posterior-packed-width", lambda: step_call(x_t=packed(B, N, W + 1), packed=True), ValueError, "x_t"),
    case("posterior-packed-x_t-dense-width", lambda: step_call(x_t=bits(), packed=True), ValueError, "x_t"),
    case("posterior-packed-x_t-float", lambda: step_call(x_t=packed().float(), packed=True), TypeError, "x_t"),
    case("posterior-device-mismatch",
         lambda: step_call(x_t=bits(device=OTHER_DEVICE)), ValueError, "x_t"),
    case("posterior-t-0", lambda: step_call(t=0, t_prev=0), ValueError, "t"),
    case("posterior-t-T+1", lambda: step_call(t=T + 1), ValueError, "t"),
    case("posterior-t-float", lambda: step_call(t=5.0), TypeError, "t"),
    case("posterior-t-tensor-wrong-length", lambda: step_call(t=torch.tensor([5])), ValueError, "t"),
    case("posterior-t_prev-equal-t", lambda: step_call(t=5, t_prev=5), ValueError, "t_prev"),
    case("posterior-t_prev-above-t", lambda: step_call(t=5, t_prev=9), ValueError, "t_prev"),
    case("posterior-t_prev-negative", lambda: step_call(t_prev=-1), ValueError, "t_prev"),
    case("posterior-t_prev-tensor-not-below-t",
         lambda: step_call(t=torch.tensor([5, 6]), t_prev=torch.tensor([4, 6])), ValueError, "t_prev"),
    case("posterior-t_prev-tensor-negative", lambda: step_call(t_prev=torch.tensor([-1, 2])), ValueError,
         "t_prev"),
    case("posterior-t_prev-float", lambda: step_call(t_prev=4.0), TypeError, "t_prev"),
    case("posterior-temperature-0", lambda: step_call(temperature=0.0), ValueError, "temperature"),
    case("posterior-temperature-negative", lambda: step_call(temperature=-1.0), ValueError, "temperature"),
    case("posterior-temperature-nan", lambda: step_call(temperature=float("nan")), ValueError, "temperature"),
    case("posterior-temperature-inf", lambda: step_call(temperature=float("inf")), ValueError, "temperature"),
    case("posterior-temperature-string", lambda: step_call(temperature="1"), TypeError, "temperature"),
    case("posterior-guidance-without-uncond", lambda: step_call(guidance_scale=1.5), ValueError, "guidance_scale"),
    case("posterior-guidance-nan",
         lambda: step_call(uncond_logits=logits(), guidance_scale=float("nan")), ValueError, "guidance_scale"),
    case("posterior-uncond-shape", lambda: step_call(uncond_logits=logits(B, N, C - 1), guidance_scale=1.0),
         ValueError, "uncond_logits"),
    case("posterior-uncond-int64", lambda: step_call(uncond_logits=bits(dtype=torch.int64), guidance_scale=1.0),
         TypeError, "uncond_logits"),
    case("posterior-p_flip-not-bool", lambda: step_call(p_flip=1), TypeError, "p_flip"),
    case("posterior-schedule-not-schedule", lambda: step_call(schedule="linear"), TypeError, "schedule"),
    # --- sample_step -------------------------------------------------------------------------------------------
    case("sample_step-int64-logits", lambda: step_call("sample_step", logits=bits(dtype=torch.int64)), TypeError,
         "logits"),
    case("sample_step-x_t-shape", lambda: step_call("sample_step", x_t=bits(B, N + 1, C)), ValueError, "x_t"),
    case("sample_step-t_prev-equal-t", lambda: step_call("sample_step", t=3, t_prev=3), ValueError, "t_prev"),
    case("sample_step-temperature-0", lambda: step_call("sample_step", temperature=0), ValueError, "temperature"),
    case("sample_step-mask-without-known", lambda: step_call("sample_step", mask=bits(N, C)), ValueError, "known"),
    case("sample_step-known-without-mask", lambda: step_call("sample_step", known=bits(N, C)), ValueError, "mask"),
    case("sample_step-mask-not-broadcastable",
         lambda: step_call("sample_step", mask=bits(N, C + 1), known=bits(N, C)), ValueError, "mask"),
    case("sample_step-mask-too-many-dims",
         lambda: step_call("sample_step", mask=bits(1, B, N, C), known=bits(N, C)), ValueError, "mask"),
    case("sample_step-known-not-broadcastable",
         lambda: step_call("sample_step", mask=bits(N, C), known=bits(N + 1, C)), ValueError, "known"),
    case("sample_step-mask-list", lambda: step_call("sample_step", mask=[1, 0], known=bits(N, C)), TypeError,
         "mask"),
    case("sample_step-guidance-without-uncond", lambda: step_call("sample_step", guidance_scale=-0.5), ValueError,
         "guidance_scale"),
    case("sample_step-seed-2**64", lambda: step_call("sample_step", seed=2**64), ValueError, "seed"),
    case("sample_step-seed-float", lambda: step_call("sample_step", seed=0.5), TypeError, "seed"),
    case("sample_step-offset-negative", lambda: step_call("sample_step", offset=-3), ValueError, "offset"),
    case("sample_step-offset-overflow", lambda: step_call("sample_step", offset=2**64 - 1), ValueError, "offset"),
    case("sample_step-packed-not-bool", lambda: step_call("sample_step", packed=None), TypeError, "packed"),
    case("sample_step-t-tensor-other-device",
         lambda: step_call("sample_step", t=torch.tensor([5, 5], device=OTHER_DEVICE)), ValueError, "t"),
    # --- diffusion_loss ----------------------------------------------------------------------------------------
    case("diffusion_loss-int64-logits", lambda: loss_call(logits=bits(dtype=torch.int64)), TypeError, "logits"),
    case("diffusion_loss-x_t-shape", lambda: loss_call(x_t=bits(B, N, C + 2)), ValueError, "x_t"),
    case("diffusion_loss-x0-shape", lambda: loss_call(x0=bits(B, 1, C)), ValueError, "x0"),
    case("diffusion_loss-x0-list", lambda: loss_call(x0=bits().tolist()), TypeError, "x0"),
    case("diffusion_loss-device-mismatch",
         lambda: loss_call(x0=bits(device=OTHER_DEVICE)), ValueError, "x0"),
    case("diffusion_loss-t-0", lambda: loss_call(t=0), ValueError, "t"),
    case("diffusion_loss-t-tensor-bad-value", lambda: loss_call(t=torch.tensor([1, T + 5])), ValueError, "t"),
    case("diffusion_loss-bad-reduction", lambda: loss_call(reduction="avg"), ValueError, "reduction"),
    case("diffusion_loss-bad-weighting", lambda: loss_call(weighting="linear"), ValueError, "weighting"),
    case("diffusion_loss-negative-gamma", lambda: loss_call(gamma=-0.5), ValueError, "gamma"),
    case("diffusion_loss-nan-gamma", lambda: loss_call(gamma=float("nan")), ValueError, "gamma"),
    case("diffusion_loss-negative-aux_weight", lambda: loss_call(aux_weight=-0.1), ValueError, "aux_weight"),
    case("diffusion_loss-balance-not-bool", lambda: loss_call(balance="true"), TypeError, "balance"),
    case("diffusion_loss-p_flip-not-bool", lambda: loss_call(p_flip=0), TypeError, "p_flip"),
    case("diffusion_loss-schedule-not-schedule", lambda: loss_call(schedule=None), TypeError, "schedule"),
    # --- binary_quantize ---------------------------------------------------------------------------------------
    case("binary_quantize-nan", lambda: ops.binary_quantize(with_value(probs(), 2, float("nan")), 0), ValueError,
         "probs"),
    case("binary_quantize-above-1", lambda: ops.binary_quantize(with_value(probs(), 2, 1.01), 0), ValueError,
         "probs"),
    case("binary_quantize-below-0", lambda: ops.binary_quantize(with_value(probs(), 2, -1e-3), 0), ValueError,
         "probs"),
    case("binary_quantize-uint8-probs", lambda: ops.binary_quantize(bits(), 0), TypeError, "probs"),
    case("binary_quantize-list-probs", lambda: ops.binary_quantize([0.5], 0), TypeError, "probs"),
    case("binary_quantize-deterministic-not-bool", lambda: ops.binary_quantize(probs(), 0, deterministic=1),
         TypeError, "deterministic"),
    case("binary_quantize-seed-negative", lambda: ops.binary_quantize(probs(), -2), ValueError, "seed"),
    case("binary_quantize-offset-overflow", lambda: ops.binary_quantize(probs(), 0, 2**64), ValueError, "offset"),
    # --- NoiseSchedule -----------------------------------------------------------------------------------------
    case("schedule-num_steps-0", lambda: blkit.NoiseSchedule(0), ValueError, "num_steps"),
    case("schedule-num_steps-negative", lambda: blkit.NoiseSchedule(-4), ValueError, "num_steps"),
    case("schedule-num_steps-float", lambda: blkit.NoiseSchedule(64.0), TypeError, "num_steps"),
    case("schedule-num_steps-bool", lambda: blkit.NoiseSchedule(True), TypeError, "num_steps"),
    case("schedule-bad-kind", lambda: blkit.NoiseSchedule(8, kind="quadratic"), ValueError, "kind"),
    case("schedule-kind-not-str", lambda: blkit.NoiseSchedule(8, kind=3), ValueError, "kind"),
    case("schedule-sampling_steps-0", lambda: SCHED.sampling_steps(0), ValueError, "num_sample_steps"),
    case("schedule-sampling_steps-T+1", lambda: SCHED.sampling_steps(T + 1), ValueError, "num_sample_steps"),
    case("schedule-sampling_steps-float", lambda: SCHED.sampling_steps(4.0), TypeError, "num_sample_steps"),
    # --- backend= ----------------------------------------------------------------------------------------------
    case("backend-unknown-name", lambda: ops.pack_bits(bits(), backend="opencl"), ValueError, "backend"),
    case("backend-not-str", lambda: ops.popcount(packed(), backend=1), TypeError, "backend"),
    case("backend-unknown-name-sample_step", lambda: step_call("sample_step", backend="CUDA"), ValueError,
         "backend"),
]


def assert_names(message: str, name: str) -> None:
    assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message), (
        f"the message does not name the argument {name!r}: {message!r}"
    )


def test_case_count():
    assert len(CASES) >= 35


@pytest.mark.parametrize("call, exc, name", CASES)
def test_bad_input(call, exc, name):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert info.type is exc or isinstance(info.value, exc), (
        f"expected {exc.__name__}, got {type(info.value).__name__}: {info.value}"
    )
    assert_names(str(info.value), name)


# --- backends that cannot run here --------------------------------------------------------------------------------

UNAVAILABLE_ON_CPU = [
    name for name in _registry.BACKEND_NAMES
    if not (_registry.all_backends().get(name) and _registry.all_backends()[name].available
            and "cpu" in _registry.all_backends()[name].devices)
]


@pytest.mark.skipif(torch.cuda.is_available(), reason='backend="cuda" can run on this machine')
def test_cuda_backend_on_cpu_only_machine_says_how_to_enable():
    with pytest.raises(ValueError) as info:
        ops.pack_bits(bits(), backend="cuda")
    message = str(info.value)
    assert_names(message, "backend")
    assert "cuda" in message
    assert "enable" in message.lower(), f"the message does not say how to enable the backend: {message!r}"


@pytest.mark.parametrize("name", UNAVAILABLE_ON_CPU or [pytest.param(None, marks=pytest.mark.skip("none"))])
def test_backend_that_cannot_run_cpu_tensors_is_explained(name):
    """Every backend name that cannot take CPU tensors here fails with a message naming ``backend`` and saying
    either how to enable it or which devices it supports."""
    with pytest.raises(ValueError) as info:
        ops.pack_bits(bits(), backend=name)
    message = str(info.value)
    assert_names(message, "backend")
    assert repr(name) in message
    assert "enable" in message.lower() or "supports" in message, message


def test_backend_resolution_follows_registry_changes(monkeypatch):
    """Resolutions are cached per (op, backend, device); a changed registry entry must not be masked by the cache."""
    assert _registry.resolve("pack_bits", "reference", "cpu") == "reference"  # cached now
    monkeypatch.setitem(_registry._BACKENDS, "reference", _registry.BackendInfo(
        "reference", devices=("cpu",), available=False, reason="switched off by this test"))
    with pytest.raises(ValueError, match="switched off by this test"):
        ops.pack_bits(bits(), backend="reference")
    monkeypatch.undo()
    assert ops.pack_bits(bits(), backend="reference").dtype == torch.uint8


# --- no corrupted state --------------------------------------------------------------------------------------------

def _valid_calls():
    x = bits()
    l = logits()
    p = probs()
    return {
        "pack_bits": ops.pack_bits(x),
        "unpack_bits": ops.unpack_bits(packed(), C),
        "xor_bits": ops.xor_bits(packed(), packed().flip(-1)),
        "popcount": ops.popcount(packed()),
        "bernoulli": ops.bernoulli(p, 123, 7),
        "bernoulli_packed": ops.bernoulli(p, 123, 7, packed=True),
        "q_sample": torch.stack(ops.q_sample(x, torch.tensor([3, 9]), SCHED, 5)),
        "posterior": ops.posterior(l, x, 5, 4, SCHED, temperature=0.7),
        "sample_step": ops.sample_step(l, x, 9, 2, SCHED, 11, 3, mask=bits(N, C), known=1 - bits(N, C)),
        "sample_step_packed": ops.sample_step(l, ops.pack_bits(x), 9, 2, SCHED, 11, 3, packed=True),
        "diffusion_loss": ops.diffusion_loss(l, x, 1 - x, 5, SCHED, gamma=1.0, aux_weight=0.1),
        "binary_quantize": ops.binary_quantize(p, 99),
        "schedule": torch.tensor(SCHED.sampling_steps(5)),
    }


def test_valid_calls_after_errors_are_unchanged():
    before = _valid_calls()
    for param in CASES:
        call, exc, _ = param.values
        try:
            call()
        except (TypeError, ValueError):
            pass
    after = _valid_calls()
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].dtype == after[key].dtype, key
        assert torch.equal(before[key], after[key]), key
