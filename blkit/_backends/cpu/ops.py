"""Registrations of the native C++ CPU kernels (pointer + size calls into blkit._native).

Every function receives what the custom op's schema gives it (blkit/ops/_library.py), already validated by
the API layer; it allocates the outputs with torch.empty (every element is written by the kernel) and passes
raw data pointers, sizes and dtype codes. Inputs are made contiguous here as well (a no-op on the API path)
because the custom ops can also be called directly (torch.library.opcheck does).
"""
import math

import torch

from ... import _native
from ..._registry import register

NAME = "cpu"

# blkit::cpu::DType codes (csrc/include/blkit/cpu.h).
_DTYPE_CODES = {
    torch.bool: 0, torch.uint8: 0, torch.int8: 0,
    torch.int16: 1, torch.int32: 2, torch.int64: 3,
    torch.float16: 4, torch.bfloat16: 5, torch.float32: 6, torch.float64: 7,
}
_REDUCTIONS = {"mean": 0, "sum": 1, "none": 2}
_U64 = (1 << 64) - 1

_threads = None


def _sync_threads() -> None:
    """Use as many threads as torch does (torch.set_num_threads applies to blkit's kernels too)."""
    global _threads
    n = torch.get_num_threads()
    if n != _threads:
        _native.cpu_set_num_threads(n)
        _threads = n


def _code(t: torch.Tensor) -> int:
    return _DTYPE_CODES[t.dtype]


def _ptr(t) -> int:
    return 0 if t is None else t.data_ptr()


def _rows_cols(shape) -> tuple[int, int]:
    """[..., C] -> (rows, C); a 0-d tensor is one row of one element."""
    if len(shape) == 0:
        return 1, 1
    cols = shape[-1]
    return (math.prod(shape[:-1]) if cols else 0), cols


def _seed_offset(rng: torch.Tensor) -> tuple[int, int]:
    seed, offset = rng.tolist()
    return seed & _U64, offset & _U64


def _coef(coef: torch.Tensor) -> torch.Tensor:
    if coef.dtype != torch.float32 or not coef.is_contiguous():
        coef = coef.to(torch.float32).contiguous()
    return coef


# --- bits ---------------------------------------------------------------------------------------
@register("pack_bits", NAME)
def pack_bits(bits):
    bits = bits.contiguous()
    rows, cols = _rows_cols(bits.shape)
    out = torch.empty((*bits.shape[:-1], (cols + 7) // 8), dtype=torch.uint8)
    if out.numel():
        _sync_threads()
        _native.pack_bits(bits.data_ptr(), out.data_ptr(), rows, cols, _code(bits))
    return out


@register("unpack_bits", NAME)
def unpack_bits(packed, num_bits, dtype):
    packed = packed.contiguous()
    out = torch.empty((*packed.shape[:-1], num_bits), dtype=dtype)
    if out.numel():
        _sync_threads()
        _native.unpack_bits(packed.data_ptr(), out.data_ptr(), out.numel() // num_bits, num_bits, _code(out))
    return out


@register("xor_bits", NAME)
def xor_bits(a, b):
    a, b = a.contiguous(), b.contiguous()
    bitwise = a.dtype in (torch.bool, torch.uint8)
    out = torch.empty(a.shape, dtype=a.dtype if bitwise else torch.uint8)
    if out.numel():
        _sync_threads()
        _native.xor_bits(a.data_ptr(), b.data_ptr(), out.data_ptr(), out.numel(), _code(a), bitwise)
    return out


@register("popcount", NAME)
def popcount(packed, dim):
    packed = packed.contiguous()
    shape = list(packed.shape)
    dim = dim % max(len(shape), 1)
    outer, size, inner = math.prod(shape[:dim]), shape[dim], math.prod(shape[dim + 1:])
    out = torch.empty(shape[:dim] + shape[dim + 1:], dtype=torch.int64)
    if out.numel():
        _sync_threads()
        _native.popcount(packed.data_ptr(), out.data_ptr(), outer, size, inner)
    return out


# --- random -------------------------------------------------------------------------------------
@register("bernoulli", NAME)
def bernoulli(probs, rng, packed):
    probs = probs.contiguous()
    rows, cols = _rows_cols(probs.shape)
    last = (cols + 7) // 8 if packed else cols
    out = torch.empty((*probs.shape[:-1], last) if probs.dim() else (), dtype=torch.uint8)
    if probs.numel():
        seed, offset = _seed_offset(rng)
        _sync_threads()
        _native.bernoulli(probs.data_ptr(), _code(probs), out.data_ptr(), rows, cols, packed, seed, offset)
    return out


@register("binary_quantize", NAME)
def binary_quantize(probs, rng, deterministic):
    probs = probs.contiguous()
    out = torch.empty(probs.shape, dtype=probs.dtype)
    if probs.numel():
        seed, offset = _seed_offset(rng)
        _sync_threads()
        _native.binary_quantize(probs.data_ptr(), _code(probs), out.data_ptr(), probs.numel(), deterministic, seed,
                                offset)
    return out


@register("q_sample", NAME)
def q_sample(x0, coef, rng, packed):
    x0 = x0.contiguous()
    rows, cols = _rows_cols(x0.shape)
    last = (cols + 7) // 8 if packed else cols
    shape = (*x0.shape[:-1], last)
    x_t = torch.empty(shape, dtype=torch.uint8)
    residual = torch.empty(shape, dtype=torch.uint8)
    batch = x0.shape[0]
    flips = torch.empty((batch,), dtype=torch.int64)
    coef = _coef(coef)
    seed, offset = _seed_offset(rng)
    _sync_threads()
    _native.q_sample(x0.data_ptr(), _code(x0), coef.data_ptr(), coef.shape[0], x_t.data_ptr(), residual.data_ptr(),
                     flips.data_ptr(), batch, rows, cols, packed, seed, offset)
    return x_t, residual, flips


def _step(sample, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out,
          seed=0, offset=0, mask=None, known=None):
    rows, cols = _rows_cols(logits.shape)
    coef = _coef(coef)
    fn = _native.sample_step if sample else _native.posterior
    _sync_threads()
    # positional (keyword parsing costs microseconds per call): see csrc/python/bind_cpu.cpp for the names
    fn(logits.data_ptr(), _code(logits), x_t.data_ptr(), _code(x_t), packed, coef.data_ptr(), coef.shape[0],
       logits.shape[0], rows, cols, float(temperature), p_flip,
       _ptr(uncond_logits), _code(uncond_logits) if uncond_logits is not None else 6, float(guidance_scale),
       _ptr(mask), _code(mask) if mask is not None else 0, _ptr(known), _code(known) if known is not None else 0,
       out.data_ptr(), seed, offset)


def _contiguous(*tensors):
    return [None if t is None else t.contiguous() for t in tensors]


@register("posterior", NAME)
def posterior(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed):
    logits, x_t, uncond_logits = _contiguous(logits, x_t, uncond_logits)
    out = torch.empty(logits.shape, dtype=torch.float32)
    if logits.numel():
        _step(False, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out)
    return out


@register("sample_step", NAME)
def sample_step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed):
    logits, x_t, uncond_logits = _contiguous(logits, x_t, uncond_logits)
    if mask is not None:  # the API expands them to the logits' shape already
        mask, known = (v.expand(logits.shape).contiguous() for v in (mask, known))
    out = torch.empty(x_t.shape, dtype=torch.uint8)
    if logits.numel():
        seed, offset = _seed_offset(rng)
        _step(True, logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed, out, seed, offset,
              mask, known)
    return out


# --- loss ---------------------------------------------------------------------------------------
@register("diffusion_loss", NAME)
def diffusion_loss(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad):
    logits, x_t, x0 = _contiguous(logits, x_t, x0)
    n = logits.numel()
    loss = torch.empty(logits.shape if reduction == "none" else (), dtype=torch.float32)
    grad = torch.empty(logits.shape if need_grad else (0,), dtype=torch.float32)
    batch = logits.shape[0] if logits.dim() else 1
    coef = _coef(coef)
    _sync_threads()
    _native.diffusion_loss(logits.data_ptr(), _code(logits), x_t.data_ptr(), _code(x_t), x0.data_ptr(), _code(x0),
                           coef.data_ptr(), coef.shape[0], batch, n, p_flip, balance, float(gamma), float(aux_weight),
                           _REDUCTIONS[reduction], loss.data_ptr(), grad.data_ptr() if need_grad and n else 0)
    return loss, grad
