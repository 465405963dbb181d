"""One torch.library schema per op, its fake (meta) implementation and autograd.

The body of every custom op looks the implementation up in the backend registry by the backend name
that the API layer resolved (validation happens once, before, in ``blkit.ops``). Shapes:
  rng     int64 [2]: (seed, offset) on the data's device, so a captured CUDA graph can be re-seeded
  coef    float32 [R, K]: per-sample step coefficients, R = 1 (one step for all) or R = batch
"""

import torch

from .. import _registry


def _dispatch(op: str, backend: str, *args):
    return _registry.lookup(op, backend)(*args)


def _packed_width(num_bits: int) -> int:
    return (num_bits + 7) // 8


# --- bits ---------------------------------------------------------------------------------------
@torch.library.custom_op("blkit::pack_bits", mutates_args=())
def pack_bits(bits: torch.Tensor, backend: str) -> torch.Tensor:
    return _dispatch("pack_bits", backend, bits)


@pack_bits.register_fake
def _(bits, backend):
    return bits.new_empty((*bits.shape[:-1], _packed_width(bits.shape[-1])), dtype=torch.uint8)


@torch.library.custom_op("blkit::unpack_bits", mutates_args=())
def unpack_bits(packed: torch.Tensor, num_bits: int, dtype: torch.dtype, backend: str) -> torch.Tensor:
    return _dispatch("unpack_bits", backend, packed, num_bits, dtype)


@unpack_bits.register_fake
def _(packed, num_bits, dtype, backend):
    return packed.new_empty((*packed.shape[:-1], num_bits), dtype=dtype)


@torch.library.custom_op("blkit::xor_bits", mutates_args=())
def xor_bits(a: torch.Tensor, b: torch.Tensor, backend: str) -> torch.Tensor:
    return _dispatch("xor_bits", backend, a, b)


@xor_bits.register_fake
def _(a, b, backend):
    return a.new_empty(a.shape, dtype=a.dtype if a.dtype in (torch.bool, torch.uint8) else torch.uint8)


@torch.library.custom_op("blkit::popcount", mutates_args=())
def popcount(packed: torch.Tensor, dim: int, backend: str) -> torch.Tensor:
    return _dispatch("popcount", backend, packed, dim)


@popcount.register_fake
def _(packed, dim, backend):
    shape = list(packed.shape)
    del shape[dim]
    return packed.new_empty(shape, dtype=torch.int64)


# --- random -------------------------------------------------------------------------------------
@torch.library.custom_op("blkit::bernoulli", mutates_args=())
def bernoulli(probs: torch.Tensor, rng: torch.Tensor, packed: bool, backend: str) -> torch.Tensor:
    return _dispatch("bernoulli", backend, probs, rng, packed)


@bernoulli.register_fake
def _(probs, rng, packed, backend):
    last = _packed_width(probs.shape[-1]) if packed else probs.shape[-1]
    return probs.new_empty((*probs.shape[:-1], last), dtype=torch.uint8)


@torch.library.custom_op("blkit::q_sample", mutates_args=())
def q_sample(
    x0: torch.Tensor, coef: torch.Tensor, rng: torch.Tensor, packed: bool, backend: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _dispatch("q_sample", backend, x0, coef, rng, packed)


@q_sample.register_fake
def _(x0, coef, rng, packed, backend):
    last = _packed_width(x0.shape[-1]) if packed else x0.shape[-1]
    shape = (*x0.shape[:-1], last)
    flips = x0.new_empty((x0.shape[0],), dtype=torch.int64)
    return x0.new_empty(shape, dtype=torch.uint8), x0.new_empty(shape, dtype=torch.uint8), flips


@torch.library.custom_op("blkit::posterior", mutates_args=())
def posterior(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    coef: torch.Tensor,
    temperature: float,
    p_flip: bool,
    uncond_logits: torch.Tensor | None,
    guidance_scale: float,
    packed: bool,
    backend: str,
) -> torch.Tensor:
    return _dispatch(
        "posterior", backend, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed
    )


@posterior.register_fake
def _(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, backend):
    return logits.new_empty(logits.shape, dtype=torch.float32)


@torch.library.custom_op("blkit::sample_step", mutates_args=())
def sample_step(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    coef: torch.Tensor,
    rng: torch.Tensor,
    temperature: float,
    p_flip: bool,
    uncond_logits: torch.Tensor | None,
    guidance_scale: float,
    mask: torch.Tensor | None,
    known: torch.Tensor | None,
    packed: bool,
    backend: str,
) -> torch.Tensor:
    return _dispatch(
        "sample_step", backend, logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale,
        mask, known, packed,
    )


@sample_step.register_fake
def _(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed, backend):
    return x_t.new_empty(x_t.shape, dtype=torch.uint8)


# --- loss (value and d loss / d logits in one call) ---------------------------------------------
@torch.library.custom_op("blkit::diffusion_loss", mutates_args=())
def diffusion_loss(
    logits: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    coef: torch.Tensor,
    p_flip: bool,
    balance: bool,
    gamma: float,
    aux_weight: float,
    reduction: str,
    need_grad: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (loss, grad): grad = d loss / d logits in float32 (for reduction="none" the element-wise
    derivative), or an empty tensor when need_grad is False."""
    return _dispatch(
        "diffusion_loss", backend, logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction,
        need_grad,
    )


@diffusion_loss.register_fake
def _(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad, backend):
    loss_shape = logits.shape if reduction == "none" else ()
    grad_shape = logits.shape if need_grad else (0,)
    return logits.new_empty(loss_shape, dtype=torch.float32), logits.new_empty(grad_shape, dtype=torch.float32)


def _loss_setup_context(ctx, inputs, output):
    ctx.save_for_backward(output[1])
    ctx.logits_dtype = inputs[0].dtype


def _loss_backward(ctx, grad_loss, _grad_of_grad):
    (dloss_dlogits,) = ctx.saved_tensors
    grad_logits = (grad_loss * dloss_dlogits).to(ctx.logits_dtype)
    return grad_logits, None, None, None, None, None, None, None, None, None, None


diffusion_loss.register_autograd(_loss_backward, setup_context=_loss_setup_context)


# --- straight-through quantizer -----------------------------------------------------------------
@torch.library.custom_op("blkit::binary_quantize", mutates_args=())
def binary_quantize(probs: torch.Tensor, rng: torch.Tensor, deterministic: bool, backend: str) -> torch.Tensor:
    return _dispatch("binary_quantize", backend, probs, rng, deterministic)


@binary_quantize.register_fake
def _(probs, rng, deterministic, backend):
    return torch.empty_like(probs)


def _quantize_backward(ctx, grad):
    return grad, None, None, None  # straight-through: d z / d p = identity


binary_quantize.register_autograd(_quantize_backward, setup_context=lambda ctx, inputs, output: None)
