"""Bit-layout kernels (DESIGN §3): pack, unpack, XOR and popcount, one launch each."""
import triton
import triton.language as tl

from .tiles import dense_tile, pack8, packed_tile


@triton.jit
def pack_kernel(bits_ptr, out_ptr, rows, C, W, chunks, SB: tl.constexpr, BLOCK: tl.constexpr):
    """out[r, k] = sum_bit (bits[r, 8k + bit] != 0) << bit over a [rows, C] input (any dtype, bool as uint8)."""
    _, idx, valid, byte, byte_valid = packed_tile(rows, C, C, W, W, chunks, SB, BLOCK)
    z = (tl.load(bits_ptr + idx, mask=valid, other=0) != 0) & valid
    tl.store(out_ptr + byte, pack8(z), mask=byte_valid)


@triton.jit
def unpack_kernel(packed_ptr, out_ptr, rows, C, W, chunks, SB: tl.constexpr, BLOCK: tl.constexpr):
    """out[r, c] = (packed[r, c // 8] >> (c % 8)) & 1, stored in out's dtype (bool outputs as uint8)."""
    seg, idx, valid = dense_tile(rows, C, chunks, SB, BLOCK)
    channel = idx - seg[:, None] * C
    byte = tl.load(packed_ptr + seg[:, None] * W + (channel >> 3), mask=valid, other=0).to(tl.int32)
    bit = (byte >> (channel & 7).to(tl.int32)) & 1
    if out_ptr.dtype.element_ty.is_floating():
        bit = bit.to(tl.float32)  # (int -> bf16 casts go through float32; the interpreter needs it)
    tl.store(out_ptr + idx, bit.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def xor_kernel(a_ptr, b_ptr, out_ptr, n, BITWISE: tl.constexpr, BLOCK: tl.constexpr):
    """BITWISE: out = a ^ b (uint8 words or bool as uint8); else out = uint8((a != 0) ^ (b != 0))."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    valid = idx < n
    a = tl.load(a_ptr + idx, mask=valid, other=0)
    b = tl.load(b_ptr + idx, mask=valid, other=0)
    if BITWISE:
        out = a ^ b
    else:
        out = ((a != 0) ^ (b != 0)).to(tl.uint8)
    tl.store(out_ptr + idx, out, mask=valid)


@triton.jit
def _popcount8(v):
    """Set bits of each byte value v (int32 in 0..255)."""
    v = v - ((v >> 1) & 0x55)
    v = (v & 0x33) + ((v >> 2) & 0x33)
    return (v + (v >> 4)) & 0x0F


@triton.jit
def popcount_kernel(packed_ptr, out_ptr, Q, D, inner, INNER_ONE: tl.constexpr, BD: tl.constexpr,
                    BQ: tl.constexpr):
    """out[q] = sum over d of popcount(packed[o, d, i]) with q = o * inner + i, over a [outer, D, inner] view.

    The tile is [BD, BQ]: BQ outputs per program, the reduced dim walked in chunks of BD. INNER_ONE (the
    reduced dim is the last one) makes each output's bytes contiguous; otherwise neighbouring outputs are.
    """
    q = tl.program_id(0).to(tl.int64) * BQ + tl.arange(0, BQ).to(tl.int64)
    q_ok = q < Q
    if INNER_ONE:
        base = q * D
        step = 1
    else:
        o = q // inner
        base = o * D * inner + (q - o * inner)
        step = inner
    acc = tl.zeros((BQ,), dtype=tl.int64)
    for d0 in range(0, D, BD):
        d = d0 + tl.arange(0, BD).to(tl.int64)
        ok = (d < D)[:, None] & q_ok[None, :]
        v = tl.load(packed_ptr + base[None, :] + d[:, None] * step, mask=ok, other=0).to(tl.int32)
        acc += tl.sum(_popcount8(v), axis=0).to(tl.int64)
    tl.store(out_ptr + q, acc, mask=q_ok)
