"""Philox uniforms exactly as DESIGN §2: ``u_i = tl.rand(seed, offset + i)``, i the int64 flat index of the
element in the dense logical output (also when that output is bit-packed).

Seed and offset are read inside the kernels from an int64 tensor ``rng = (seed, offset)`` in device memory,
so a captured CUDA graph replayed after ``rng.copy_(...)`` draws new numbers.
"""
import triton
import triton.language as tl

from .tiles import pack8, packed_tile


@triton.jit
def uniform_kernel(out_ptr, seed, offset, n, BLOCK: tl.constexpr):
    """out[i] = tl.rand(seed, offset + i) for i < n (float32); offset and i in int64."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    u = tl.rand(seed, offset + idx)
    tl.store(out_ptr + idx, u, mask=idx < n)


@triton.jit
def bernoulli_kernel(probs_ptr, out_ptr, rng_ptr, n, BLOCK: tl.constexpr):
    """Dense: out[i] = uint8(tl.rand(seed, offset + i) < float32(p[i])), flat over n elements."""
    seed = tl.load(rng_ptr)
    offset = tl.load(rng_ptr + 1)
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    valid = idx < n
    p = tl.load(probs_ptr + idx, mask=valid, other=0.0).to(tl.float32)
    z = tl.rand(seed, offset + idx) < p
    tl.store(out_ptr + idx, z.to(tl.uint8), mask=valid)


@triton.jit
def bernoulli_packed_kernel(probs_ptr, out_ptr, rng_ptr, rows, C, W, chunks, SB: tl.constexpr,
                            BLOCK: tl.constexpr):
    """Packed: rows of C draws -> rows of W = ceil(C / 8) bytes (channel c in byte c // 8, bit c % 8)."""
    seed = tl.load(rng_ptr)
    offset = tl.load(rng_ptr + 1)
    _, idx, valid, byte, byte_valid = packed_tile(rows, C, C, W, W, chunks, SB, BLOCK)
    p = tl.load(probs_ptr + idx, mask=valid, other=0.0).to(tl.float32)
    z = (tl.rand(seed, offset + idx) < p) & valid
    tl.store(out_ptr + byte, pack8(z), mask=byte_valid)


@triton.jit
def quantize_kernel(probs_ptr, out_ptr, rng_ptr, n, DETERMINISTIC: tl.constexpr, BLOCK: tl.constexpr):
    """Binary quantizer forward: z = (p > 0.5) or (u < p), p in float32, stored in the output's dtype."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    valid = idx < n
    p = tl.load(probs_ptr + idx, mask=valid, other=0.0).to(tl.float32)
    if DETERMINISTIC:
        z = p > 0.5
    else:
        seed = tl.load(rng_ptr)
        offset = tl.load(rng_ptr + 1)
        z = tl.rand(seed, offset + idx) < p
    tl.store(out_ptr + idx, z.to(tl.float32).to(out_ptr.dtype.element_ty), mask=valid)
