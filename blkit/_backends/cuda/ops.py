"""Registrations of the hand-written CUDA kernels (csrc/cuda, called through blkit._native.cuda_*).

Every function receives what the custom op's schema gives it (blkit/ops/_library.py), already validated by the
API layer; it allocates the outputs on the data's device with torch.empty (every element is written by the
kernels), and passes raw device pointers, sizes, dtype codes and torch's current stream. Nothing here reads a
tensor value on the host: seed and offset stay in the device tensor ``rng`` whose address the kernels get, so
every op is asynchronous and can be captured in a CUDA graph (and replayed with a new seed). Inputs are made
contiguous again (a no-op on the API path) because the custom ops can also be called directly (opcheck does).
"""
import contextlib
import math

import torch

from ... import _native
from ..._registry import register

NAME = "cuda"

# blkit::cpu::DType codes (csrc/include/blkit/cpu.h), shared by the CUDA API.
_DTYPE_CODES = {
    torch.bool: 0, torch.uint8: 0, torch.int8: 0,
    torch.int16: 1, torch.int32: 2, torch.int64: 3,
    torch.float16: 4, torch.bfloat16: 5, torch.float32: 6, torch.float64: 7,
}
_REDUCTIONS = {"mean": 0, "sum": 1, "none": 2}


def _code(t: torch.Tensor) -> int:
    return _DTYPE_CODES[t.dtype]


def _ptr(t) -> int:
    return 0 if t is None else t.data_ptr()


def _launch_context(device: torch.device):
    """The kernels run on the current CUDA device: make it the data's device when it is not."""
    if device.index is None or device.index == torch.cuda.current_device():
        return contextlib.nullcontext()
    return torch.cuda.device(device.index)


def _stream(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream


def _rows_cols(shape) -> tuple[int, int]:
    """[..., C] -> (rows, C); a 0-d tensor is one row of one element."""
    if len(shape) == 0:
        return 1, 1
    cols = shape[-1]
    return (math.prod(shape[:-1]) if cols else 0), cols


def _contiguous(*tensors):
    return [None if t is None else t.contiguous() for t in tensors]


def _on(t: torch.Tensor, device: torch.device, dtype=None) -> torch.Tensor:
    """A small side input (rng state, step table) on the data's device, contiguous (normally a no-op)."""
    return t.to(device=device, dtype=dtype or t.dtype).contiguous()


# --- bits ---------------------------------------------------------------------------------------
@register("pack_bits", NAME)
def pack_bits(bits):
    (bits,) = _contiguous(bits)
    rows, cols = _rows_cols(bits.shape)
    out = torch.empty((*bits.shape[:-1], (cols + 7) // 8), dtype=torch.uint8, device=bits.device)
    if out.numel():
        with _launch_context(bits.device):
            _native.cuda_pack_bits(bits.data_ptr(), out.data_ptr(), rows, cols, _code(bits), _stream(bits.device))
    return out


@register("unpack_bits", NAME)
def unpack_bits(packed, num_bits, dtype):
    (packed,) = _contiguous(packed)
    out = torch.empty((*packed.shape[:-1], num_bits), dtype=dtype, device=packed.device)
    if out.numel():
        with _launch_context(packed.device):
            _native.cuda_unpack_bits(packed.data_ptr(), out.data_ptr(), out.numel() // num_bits, num_bits, _code(out),
                                     _stream(packed.device))
    return out


@register("xor_bits", NAME)
def xor_bits(a, b):
    a, b = _contiguous(a, b)
    bitwise = a.dtype in (torch.bool, torch.uint8)
    out = torch.empty(a.shape, dtype=a.dtype if bitwise else torch.uint8, device=a.device)
    if out.numel():
        with _launch_context(a.device):
            _native.cuda_xor_bits(a.data_ptr(), b.data_ptr(), out.data_ptr(), out.numel(), _code(a), bitwise,
                                  _stream(a.device))
    return out


@register("popcount", NAME)
def popcount(packed, dim):
    (packed,) = _contiguous(packed)
    shape = list(packed.shape)
    dim = dim % max(len(shape), 1)
    outer, size, inner = math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])
    out = torch.empty(shape[:dim] + shape[dim + 1:], dtype=torch.int64, device=packed.device)
    if out.numel():
        with _launch_context(packed.device):
            _native.cuda_popcount(packed.data_ptr(), out.data_ptr(), outer, size, inner, _stream(packed.device))
    return out


# --- random -------------------------------------------------------------------------------------
@register("bernoulli", NAME)
def bernoulli(probs, rng, packed):
    (probs,) = _contiguous(probs)
    device = probs.device
    rows, cols = _rows_cols(probs.shape)
    last = (cols + 7) // 8 if packed else cols
    out = torch.empty((*probs.shape[:-1], last) if probs.dim() else (), dtype=torch.uint8, device=device)
    if probs.numel():
        rng = _on(rng, device, torch.int64)
        with _launch_context(device):
            _native.cuda_bernoulli(probs.data_ptr(), _code(probs), out.data_ptr(), rows, cols, packed, rng.data_ptr(),
                                   _stream(device))
    return out


@register("binary_quantize", NAME)
def binary_quantize(probs, rng, deterministic):
    (probs,) = _contiguous(probs)
    device = probs.device
    out = torch.empty(probs.shape, dtype=probs.dtype, device=device)
    if probs.numel():
        rng_ptr = 0 if deterministic else _on(rng, device, torch.int64).data_ptr()
        with _launch_context(device):
            _native.cuda_binary_quantize(probs.data_ptr(), _code(probs), out.data_ptr(), probs.numel(), deterministic,
                                         rng_ptr, _stream(device))
    return out


@register("q_sample", NAME)
def q_sample(x0, coef, rng, packed):
    (x0,) = _contiguous(x0)
    device = x0.device
    rows, cols = _rows_cols(x0.shape)
    last = (cols + 7) // 8 if packed else cols
    shape = (*x0.shape[:-1], last)
    x_t = torch.empty(shape, dtype=torch.uint8, device=device)
    residual = torch.empty(shape, dtype=torch.uint8, device=device)
    batch = x0.shape[0]
    flips = torch.empty((batch,), dtype=torch.int64, device=device)
    if batch == 0:
        return x_t, residual, flips
    coef = _on(coef, device, torch.float32)
    rng = _on(rng, device, torch.int64)
    with _launch_context(device):  # flips are zeroed by the native call (a memset on the stream)
        _native.cuda_q_sample(x0.data_ptr(), _code(x0), coef.data_ptr(), coef.shape[0], x_t.data_ptr(),
                              residual.data_ptr(), flips.data_ptr(), batch, rows, cols, packed, rng.data_ptr(),
                              _stream(device))
    return x_t, residual, flips


def _step(sample, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out, rng=None,
          mask=None, known=None):
    device = logits.device
    rows, cols = _rows_cols(logits.shape)
    coef = _on(coef, device, torch.float32)
    fn = _native.cuda_sample_step if sample else _native.cuda_posterior
    with _launch_context(device):
        fn(logits.data_ptr(), _code(logits), x_t.data_ptr(), _code(x_t), packed, coef.data_ptr(), coef.shape[0],
           logits.shape[0], rows, cols, float(temperature), p_flip,
           uncond_ptr=_ptr(uncond_logits), uncond_dtype=_code(uncond_logits) if uncond_logits is not None else 6,
           guidance_scale=float(guidance_scale),
           mask_ptr=_ptr(mask), mask_dtype=_code(mask) if mask is not None else 0,
           known_ptr=_ptr(known), known_dtype=_code(known) if known is not None else 0,
           out_ptr=out.data_ptr(), rng_ptr=_ptr(rng), stream_ptr=_stream(device))


@register("posterior", NAME)
def posterior(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed):
    logits, x_t, uncond_logits = _contiguous(logits, x_t, uncond_logits)
    out = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
    if logits.numel():
        _step(False, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out)
    return out


@register("sample_step", NAME)
def sample_step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed):
    logits, x_t, uncond_logits = _contiguous(logits, x_t, uncond_logits)
    if mask is not None:  # the API expands them to the logits' shape already
        mask, known = (v.expand(logits.shape).contiguous() for v in (mask, known))
    out = torch.empty(x_t.shape, dtype=torch.uint8, device=logits.device)
    if logits.numel():
        rng = _on(rng, logits.device, torch.int64)
        _step(True, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out, rng, mask,
              known)
    return out


# --- loss ---------------------------------------------------------------------------------------
@register("diffusion_loss", NAME)
def diffusion_loss(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad):
    logits, x_t, x0 = _contiguous(logits, x_t, x0)
    device = logits.device
    n = logits.numel()
    loss = torch.empty(logits.shape if reduction == "none" else (), dtype=torch.float32, device=device)
    grad = torch.empty(logits.shape if need_grad else (0,), dtype=torch.float32, device=device)
    if n == 0 and reduction == "none":
        return loss, grad
    batch = logits.shape[0] if logits.dim() else 1
    coef = _on(coef, device, torch.float32)
    args = (logits.data_ptr(), _code(logits), x_t.data_ptr(), _code(x_t), x0.data_ptr(), _code(x0), coef.data_ptr(),
            coef.shape[0], batch, n, p_flip, balance, float(gamma), float(aux_weight), _REDUCTIONS[reduction])
    with _launch_context(device):
        size = _native.cuda_diffusion_loss_workspace_size(*args)
        workspace = torch.empty((size,), dtype=torch.uint8, device=device)  # partial sums, per-sample counts
        _native.cuda_diffusion_loss(*args, loss.data_ptr(), grad.data_ptr() if need_grad and n else 0,
                                    workspace.data_ptr() if size else 0, size, _stream(device))
    return loss, grad
