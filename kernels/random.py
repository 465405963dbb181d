"""Philox uniforms exactly as DESIGN §2: ``u_i = tl.rand(seed, offset + i)``."""
import triton
import triton.language as tl


@triton.jit
def uniform_kernel(out_ptr, seed, offset, n, BLOCK: tl.constexpr):
    """out[i] = tl.rand(seed, offset + i) for i < n (float32); offset and i in int64."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    u = tl.rand(seed, offset + idx)
    tl.store(out_ptr + idx, u, mask=idx < n)


BERNOULLI_BLOCK = 1024


@triton.jit
def bernoulli_kernel(probs_ptr, out_ptr, rng_ptr, n, num_bits, width, PACKED: tl.constexpr, BLOCK: tl.constexpr):
    """z_i = tl.rand(seed, offset + i) < p_i (p in float32); rng_ptr -> int64 (seed, offset) in device memory.

    Dense: one output byte per element. Packed: program covers BLOCK output bytes, byte j of row r holds
    elements r * num_bits + 8 j + bit, bit = 0..7 (little-endian), padding bits 0.
    """
    seed = tl.load(rng_ptr)
    offset = tl.load(rng_ptr + 1)
    start = tl.program_id(0).to(tl.int64) * BLOCK
    if PACKED:
        byte = start + tl.arange(0, BLOCK).to(tl.int64)
        row = byte // width
        channel = (byte % width)[:, None] * 8 + tl.arange(0, 8)[None, :]
        idx = row[:, None] * num_bits + channel
        valid = (byte < n // num_bits * width)[:, None] & (channel < num_bits)
        p = tl.load(probs_ptr + idx, mask=valid, other=0.0).to(tl.float32)
        z = (tl.rand(seed, offset + idx) < p) & valid
        word = tl.sum(z.to(tl.int32) << tl.arange(0, 8)[None, :], axis=1)
        tl.store(out_ptr + byte, word.to(tl.uint8), mask=byte < n // num_bits * width)
    else:
        idx = start + tl.arange(0, BLOCK).to(tl.int64)
        valid = idx < n
        p = tl.load(probs_ptr + idx, mask=valid, other=0.0).to(tl.float32)
        z = tl.rand(seed, offset + idx) < p
        tl.store(out_ptr + idx, z.to(tl.uint8), mask=valid)
