"""One torch.library schema per op, its fake (meta) implementation and autograd.

Every op is one dispatcher op ``torch.ops.blkit.<name>`` with a single Python kernel for every device
(CompositeExplicitAutograd) that looks the implementation up in the backend registry by the backend name
the API layer resolved (validation happens once, before, in ``blkit.ops``); the differentiable ops register
their backward with ``torch.library.register_autograd``, the others let autograd fall through. These are the low-level
``torch.library.Library`` definitions rather than ``torch.library.custom_op``: the latter wraps every call
in a Python autograd layer and a dynamo-disable frame, which cost as much as a CPU kernel on small inputs
and several times more with cold caches after a large kernel (docs/benchmarks.md). Shapes:
  rng     int64 [2]: (seed, offset) on the data's device, so a captured CUDA graph can be re-seeded
  coef    float32 [R, K]: per-sample step coefficients, R = 1 (one step for all) or R = batch
"""

import torch

from .. import _registry

_LIB = torch.library.Library("blkit", "DEF")


def _define(schema: str, fake, backward=None, setup_context=None):
    """Defines ``blkit::<schema>``, whose last argument is the backend name, and returns its overload.

    Without ``backward`` the op is declared not differentiable (autograd falls through: its outputs never
    require grad), which is right for ops whose outputs are bits or counts.
    """
    name = schema.split("(", 1)[0]
    _LIB.define(schema)

    def kernel(*args):
        return _registry.lookup(name, args[-1])(*args[:-1])

    _LIB.impl(name, kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(f"blkit::{name}", fake, lib=_LIB)
    if backward is None:
        _LIB.impl(name, torch.library.fallthrough_kernel, "Autograd")
    else:
        torch.library.register_autograd(f"blkit::{name}", backward, setup_context=setup_context, lib=_LIB)
    return getattr(torch.ops.blkit, name).default


def _packed_width(num_bits: int) -> int:
    return (num_bits + 7) // 8


# --- bits ---------------------------------------------------------------------------------------
def _pack_bits_fake(bits, backend):
    return bits.new_empty((*bits.shape[:-1], _packed_width(bits.shape[-1])), dtype=torch.uint8)


pack_bits = _define("pack_bits(Tensor bits, str backend) -> Tensor", _pack_bits_fake)


def _unpack_bits_fake(packed, num_bits, dtype, backend):
    return packed.new_empty((*packed.shape[:-1], num_bits), dtype=dtype)


unpack_bits = _define("unpack_bits(Tensor packed, int num_bits, ScalarType dtype, str backend) -> Tensor",
                      _unpack_bits_fake)


def _xor_bits_fake(a, b, backend):
    return a.new_empty(a.shape, dtype=a.dtype if a.dtype in (torch.bool, torch.uint8) else torch.uint8)


xor_bits = _define("xor_bits(Tensor a, Tensor b, str backend) -> Tensor", _xor_bits_fake)


def _popcount_fake(packed, dim, backend):
    shape = list(packed.shape)
    del shape[dim]
    return packed.new_empty(shape, dtype=torch.int64)


popcount = _define("popcount(Tensor packed, int dim, str backend) -> Tensor", _popcount_fake)


# --- random -------------------------------------------------------------------------------------
def _bernoulli_fake(probs, rng, packed, backend):
    last = _packed_width(probs.shape[-1]) if packed else probs.shape[-1]
    return probs.new_empty((*probs.shape[:-1], last), dtype=torch.uint8)


bernoulli = _define("bernoulli(Tensor probs, Tensor rng, bool packed, str backend) -> Tensor", _bernoulli_fake)


def _q_sample_fake(x0, coef, rng, packed, backend):
    last = _packed_width(x0.shape[-1]) if packed else x0.shape[-1]
    shape = (*x0.shape[:-1], last)
    flips = x0.new_empty((x0.shape[0],), dtype=torch.int64)
    return x0.new_empty(shape, dtype=torch.uint8), x0.new_empty(shape, dtype=torch.uint8), flips


q_sample = _define("q_sample(Tensor x0, Tensor coef, Tensor rng, bool packed, str backend) -> (Tensor, Tensor, Tensor)",
                   _q_sample_fake)


def _posterior_fake(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, backend):
    return logits.new_empty(logits.shape, dtype=torch.float32)


def _posterior_backward(ctx, grad):
    raise RuntimeError("blkit.ops.posterior is not differentiable; train through blkit.ops.diffusion_loss")


posterior = _define(
    "posterior(Tensor logits, Tensor x_t, Tensor coef, float temperature, bool p_flip, Tensor? uncond_logits, "
    "float guidance_scale, bool packed, str backend) -> Tensor",
    _posterior_fake,
    _posterior_backward,
    lambda ctx, inputs, output: None,
)


def _sample_step_fake(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed,
                      backend):
    return x_t.new_empty(x_t.shape, dtype=torch.uint8)


sample_step = _define(
    "sample_step(Tensor logits, Tensor x_t, Tensor coef, Tensor rng, float temperature, bool p_flip, "
    "Tensor? uncond_logits, float guidance_scale, Tensor? mask, Tensor? known, bool packed, str backend) -> Tensor",
    _sample_step_fake,
)


# --- loss (value and d loss / d logits in one call) ---------------------------------------------
def _diffusion_loss_fake(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad, backend):
    loss_shape = logits.shape if reduction == "none" else ()
    grad_shape = logits.shape if need_grad else (0,)
    return logits.new_empty(loss_shape, dtype=torch.float32), logits.new_empty(grad_shape, dtype=torch.float32)


# Returns (loss, grad): grad = d loss / d logits in float32 (for reduction="none" the element-wise derivative), or an
# empty tensor when need_grad is False.
#
# In eager mode the backward hands the saved derivative itself out, scaled in place: no second logits-sized buffer
# (on CPU a fresh one costs page faults: B=64 N=256 C=64 forward + backward 0.96 -> 0.69 ms). Autograd may then adopt
# it as .grad and accumulate into it, so a retained graph's next backward computes the derivative again from the
# saved inputs. When traced (torch.compile, AOT, fake tensors) the backward is the plain product.
def _plain_eager(tensor) -> bool:
    return (type(tensor) is torch.Tensor and not torch.compiler.is_compiling()
            and not torch.utils._python_dispatch.is_in_torch_dispatch_mode())


def _loss_setup_context(ctx, inputs, output):
    logits, x_t, x0, coef, *options = inputs
    derivative = output[1]
    ctx.options = options  # p_flip .. need_grad, backend
    ctx.logits_dtype = logits.dtype
    ctx.hand_out = _plain_eager(derivative)
    # kept beside the saved tensors, whose version check would refuse it once scaled in place; detached, so it holds
    # no reference back to this node
    ctx.derivative = derivative.detach() if ctx.hand_out else None
    ctx.save_for_backward(logits, x_t, x0, coef, *(() if ctx.hand_out else (derivative,)))
    ctx.set_materialize_grads(False)  # the derivative output never receives a gradient: no zero tensor for it


def _loss_backward(ctx, grad_loss, _grad_of_grad):
    if grad_loss is None:
        return (None,) * 11
    if not ctx.hand_out:
        grad_logits = grad_loss * ctx.saved_tensors[4]
    else:
        derivative, ctx.derivative = ctx.derivative, None
        if derivative is None:  # handed out by an earlier backward through this retained graph
            with torch.no_grad():
                _, derivative = diffusion_loss(*ctx.saved_tensors, *ctx.options)
        # under create_graph the product stays differentiable in grad_loss
        grad_logits = grad_loss * derivative if torch.is_grad_enabled() else derivative.mul_(grad_loss)
    return grad_logits.to(ctx.logits_dtype), *(None,) * 10


diffusion_loss = _define(
    "diffusion_loss(Tensor logits, Tensor x_t, Tensor x0, Tensor coef, bool p_flip, bool balance, float gamma, "
    "float aux_weight, str reduction, bool need_grad, str backend) -> (Tensor, Tensor)",
    _diffusion_loss_fake,
    _loss_backward,
    _loss_setup_context,
)


# --- straight-through quantizer -----------------------------------------------------------------
def _quantize_backward(ctx, grad):
    return grad, None, None, None  # straight-through: d z / d p = identity


binary_quantize = _define(
    "binary_quantize(Tensor probs, Tensor rng, bool deterministic, str backend) -> Tensor",
    lambda probs, rng, deterministic, backend: torch.empty_like(probs),
    _quantize_backward,
    lambda ctx, inputs, output: None,
)
