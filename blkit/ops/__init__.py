"""blkit.ops: the public ops of DESIGN §4.

Each function validates its inputs (``_validate``), computes per-step scalars on the host
(``_coefficients``), resolves the backend for the data's device (``blkit._registry``) and calls the
torch.library custom op ``torch.ops.blkit.<name>`` (``_library``), which runs the registered kernel.
Shapes: ``[..., C]`` for dense bits (C = binary channels, last dim), ``[..., ceil(C/8)]`` when packed;
per-sample steps ``t``/``t_prev`` are int64 tensors ``[B]`` with B the first dim.
"""
import torch

from .. import _registry
from ..schedule import NoiseSchedule
from . import _coefficients as coefs
from . import _library as lib
from . import _validate as v
from ._validate import set_device_value_checks

OP_NAMES = (
    "pack_bits", "unpack_bits", "xor_bits", "popcount", "bernoulli", "q_sample", "posterior",
    "sample_step", "diffusion_loss", "binary_quantize",
)
__all__ = [*OP_NAMES, "set_device_value_checks"]


def _backend(op: str, backend, *tensors) -> str:
    return _registry.resolve(op, backend, tensors[0].device.type)


def _dense_bits(x, name: str, min_dim: int = 1) -> torch.Tensor:
    return v.tensor(x, name, v.BINARY_DTYPES, "bool, integer or floating 0/1", min_dim=min_dim).contiguous()


def pack_bits(bits: torch.Tensor, *, backend=None) -> torch.Tensor:
    """[..., C] bits (nonzero = 1) -> uint8 [..., ceil(C/8)]; channel c in byte c // 8, bit c % 8."""
    bits = _dense_bits(bits, "bits")
    return lib.pack_bits(bits, _backend("pack_bits", backend, bits))


def unpack_bits(packed: torch.Tensor, num_bits: int, dtype: torch.dtype = torch.uint8, *, backend=None):
    """uint8 [..., W] -> [..., num_bits] of 0/1 in ``dtype``; requires W == ceil(num_bits / 8)."""
    packed = v.tensor(packed, "packed", (torch.uint8,), min_dim=1).contiguous()
    v.integer(num_bits, "num_bits", low=0)
    if (num_bits + 7) // 8 != packed.shape[-1]:
        raise ValueError(
            f"num_bits={num_bits} needs a packed width of {(num_bits + 7) // 8} bytes, but packed has "
            f"{packed.shape[-1]} in its last dimension"
        )
    if not isinstance(dtype, torch.dtype) or dtype not in v.BINARY_DTYPES:
        raise TypeError(f"dtype must be one of bool, uint8 or a floating dtype, got {dtype}")
    return lib.unpack_bits(packed, num_bits, dtype, _backend("unpack_bits", backend, packed))


def xor_bits(a: torch.Tensor, b: torch.Tensor, *, backend=None) -> torch.Tensor:
    """a XOR b, same shape and dtype. uint8 is XORed bitwise (packed words, or dense 0/1); bool gives bool;
    floating 0/1 gives uint8 (nonzero = 1)."""
    a = _dense_bits(a, "a", min_dim=0)
    b = _dense_bits(b, "b", min_dim=0)
    v.same_device(a, "a", b=b)
    if a.dtype != b.dtype:
        raise TypeError(f"b must have the dtype of a ({a.dtype}), got {b.dtype}")
    v.same_shape(b, "b", a.shape, "a")
    return lib.xor_bits(a, b, _backend("xor_bits", backend, a))


def popcount(packed: torch.Tensor, dim: int = -1, *, backend=None) -> torch.Tensor:
    """Number of set bits of uint8 ``packed`` summed over ``dim`` -> int64, ``dim`` removed."""
    packed = v.tensor(packed, "packed", (torch.uint8, torch.bool), min_dim=1).contiguous()
    v.integer(dim, "dim", low=-packed.dim(), high=packed.dim() - 1)
    return lib.popcount(packed, dim % packed.dim(), _backend("popcount", backend, packed))


def bernoulli(probs: torch.Tensor, seed, offset=0, *, packed: bool = False, backend=None) -> torch.Tensor:
    """z_i = (u_i < probs_i) with u from the shared Philox stream -> uint8 [..., C] or packed [..., ceil(C/8)]."""
    probs = v.tensor(probs, "probs", v.FLOAT_DTYPES, min_dim=1 if packed else 0).contiguous()
    v.flag(packed, "packed")
    v.probabilities(probs, "probs")
    rng = v.rng_state(seed, offset, probs.numel(), probs.device)
    return lib.bernoulli(probs, rng, packed, _backend("bernoulli", backend, probs))


def q_sample(x0, t, schedule: NoiseSchedule, seed, offset=0, *, packed: bool = False, return_counts: bool = False,
             backend=None):
    """Forward noising x_t ~ Bernoulli(k[t] x0 + b[t]) and the residual x_t XOR x0.

    x0: dense bits [B, ..., C]; t: int or int64 [B]. Returns (x_t, residual) as uint8 [B, ..., C], or packed
    [B, ..., ceil(C/8)] when ``packed``; with ``return_counts`` also int64 [B] flips per sample.
    """
    x0 = _dense_bits(x0, "x0")
    v.schedule(schedule)
    v.flag(packed, "packed")
    v.step(t, "t", schedule.num_steps, x0.shape[0], x0.device, low=1)
    rng = v.rng_state(seed, offset, x0.numel(), x0.device)
    coef = coefs.q_sample_coefficients(schedule, t, x0.device)
    x_t, residual, flips = lib.q_sample(x0, coef, rng, packed, _backend("q_sample", backend, x0))
    return (x_t, residual, flips) if return_counts else (x_t, residual)


def _step_inputs(logits, x_t, t, t_prev, schedule, temperature, p_flip, uncond_logits, guidance_scale, packed):
    logits = v.tensor(logits, "logits", v.LOGIT_DTYPES, min_dim=1).contiguous()
    x_t = v.tensor(x_t, "x_t", v.BINARY_DTYPES, "bool, uint8 or floating 0/1 (uint8 when packed)").contiguous()
    v.schedule(schedule)
    v.flag(packed, "packed")
    v.flag(p_flip, "p_flip")
    v.same_device(logits, "logits", x_t=x_t)
    if packed:
        if x_t.dtype != torch.uint8:
            raise TypeError(f"x_t must be uint8 when packed=True, got {x_t.dtype}")
        v.same_shape(x_t, "x_t", (*logits.shape[:-1], (logits.shape[-1] + 7) // 8), "packed logits")
    else:
        v.same_shape(x_t, "x_t", logits.shape, "logits")
    temperature = v.real(temperature, "temperature", positive=True)
    guidance_scale = v.real(guidance_scale, "guidance_scale")
    if uncond_logits is not None:
        uncond_logits = v.tensor(uncond_logits, "uncond_logits", v.LOGIT_DTYPES).contiguous()
        v.same_device(logits, "logits", uncond_logits=uncond_logits)
        v.same_shape(uncond_logits, "uncond_logits", logits.shape, "logits")
    elif guidance_scale != 0.0:
        raise ValueError("guidance_scale != 0 needs uncond_logits")
    v.step(t, "t", schedule.num_steps, logits.shape[0], logits.device, low=1)
    v.step(t_prev, "t_prev", schedule.num_steps - 1, logits.shape[0], logits.device, low=0)
    v.step_order(t, t_prev)
    coef = coefs.step_coefficients(schedule, t, t_prev, p_flip, logits.device)
    return logits, x_t, coef, temperature, guidance_scale, uncond_logits


def posterior(logits, x_t, t, t_prev, schedule: NoiseSchedule, *, temperature=1.0, p_flip=True,
              uncond_logits=None, guidance_scale=0.0, packed=False, backend=None) -> torch.Tensor:
    """float32 [..., C]: P(x_{t_prev} = 1 | x_t, prediction); phat = P(x_0 = 1) where t_prev = 0.

    logits: [B, ..., C] float32/float16/bfloat16; x_t: dense [B, ..., C] or packed [B, ..., ceil(C/8)].
    """
    logits, x_t, coef, temperature, guidance_scale, uncond_logits = _step_inputs(
        logits, x_t, t, t_prev, schedule, temperature, p_flip, uncond_logits, guidance_scale, packed
    )
    return lib.posterior(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed,
                         _backend("posterior", backend, logits))


def sample_step(logits, x_t, t, t_prev, schedule: NoiseSchedule, seed, offset=0, *, temperature=1.0, p_flip=True,
                uncond_logits=None, guidance_scale=0.0, mask=None, known=None, packed=False,
                backend=None) -> torch.Tensor:
    """One reverse step: uint8 x_{t_prev} = (u_i < pi_i), or (phat > 0.5) where t_prev = 0.

    logits: [B, ..., C]; x_t: dense uint8/bool/float [B, ..., C] or packed uint8 [B, ..., ceil(C/8)] (then the
    output is packed too). mask, known: dense, broadcastable to logits; the output is ``known`` where mask != 0.
    """
    logits, x_t, coef, temperature, guidance_scale, uncond_logits = _step_inputs(
        logits, x_t, t, t_prev, schedule, temperature, p_flip, uncond_logits, guidance_scale, packed
    )
    if (mask is None) != (known is None):
        raise ValueError("mask and known must be given together (inpainting), got only " +
                         ("mask" if known is None else "known"))
    if mask is not None:
        mask = v.tensor(mask, "mask", v.BINARY_DTYPES, "bool, integer or floating 0/1")
        known = v.tensor(known, "known", v.BINARY_DTYPES, "bool, integer or floating 0/1")
        v.same_device(logits, "logits", mask=mask, known=known)
        v.broadcastable(mask, "mask", logits.shape)
        v.broadcastable(known, "known", logits.shape)
        mask = mask.expand(logits.shape).contiguous()
        known = known.expand(logits.shape).contiguous()
    rng = v.rng_state(seed, offset, logits.numel(), logits.device)
    return lib.sample_step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known,
                           packed, _backend("sample_step", backend, logits))


def diffusion_loss(logits, x_t, x0, t, schedule: NoiseSchedule, *, p_flip=True, balance=True, gamma=0.0,
                   weighting="mean", aux_weight=0.0, reduction="mean", backend=None) -> torch.Tensor:
    """Training loss of DESIGN §1.3, differentiable w.r.t. ``logits``.

    logits: [B, ..., C] float32/float16/bfloat16; x_t, x0: dense bits of the same shape; t: int or int64 [B]
    (the step x_t was drawn at). Returns a float32 scalar, or [B, ..., C] for reduction="none".
    """
    logits = v.tensor(logits, "logits", v.LOGIT_DTYPES, min_dim=1).contiguous()
    x_t = _dense_bits(x_t, "x_t")
    x0 = _dense_bits(x0, "x0")
    v.same_device(logits, "logits", x_t=x_t, x0=x0)
    v.same_shape(x_t, "x_t", logits.shape, "logits")
    v.same_shape(x0, "x0", logits.shape, "logits")
    v.schedule(schedule)
    v.flag(p_flip, "p_flip")
    v.flag(balance, "balance")
    gamma = v.real(gamma, "gamma", nonnegative=True)
    aux_weight = v.real(aux_weight, "aux_weight", nonnegative=True)
    v.choice(weighting, "weighting", ("mean", "weighted"))
    v.choice(reduction, "reduction", ("mean", "sum", "none"))
    v.step(t, "t", schedule.num_steps, logits.shape[0], logits.device, low=1)
    coef = coefs.loss_coefficients(schedule, t, weighting, logits.device)
    need_grad = torch.is_grad_enabled() and logits.requires_grad
    loss, _ = lib.diffusion_loss(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad,
                                 _backend("diffusion_loss", backend, logits))
    return loss


def binary_quantize(probs, seed, offset=0, *, deterministic=False, backend=None) -> torch.Tensor:
    """Straight-through binary quantizer: forward (u < probs) or (probs > 0.5), in probs' dtype and shape;
    the gradient w.r.t. probs is the identity."""
    probs = v.tensor(probs, "probs", v.FLOAT_DTYPES).contiguous()
    v.flag(deterministic, "deterministic")
    v.probabilities(probs, "probs")
    rng = v.rng_state(seed, offset, probs.numel(), probs.device)
    return lib.binary_quantize(probs, rng, deterministic, _backend("binary_quantize", backend, probs))
