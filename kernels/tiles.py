"""Tile indexing shared by the kernels (int64 element indices throughout).

Data is seen as ``nseg`` segments of ``S`` elements (a segment is one sample of the batch, or one row of
the last dimension, or the whole tensor). A program covers ``SB`` segments times ``BLOCK`` positions of one
chunk of them; the flat 1-D grid enumerates (segment group, chunk) pairs as ``pid = group * chunks + chunk``,
so per-sample quantities (step coefficients, flip counts) are one value per tile row and no element needs
an integer division by the segment size.

Dense tiles are ``[SB, BLOCK]`` elements. Packed tiles are ``[SB, BLOCK, 8]``: BLOCK bytes of a segment that
holds ``S // C`` rows of ``C`` channels stored in ``W = ceil(C / 8)`` bytes each (``SW`` bytes per segment);
byte ``k`` of a segment is row ``k // W``, channels ``8 * (k % W) + bit`` (DESIGN §3, little-endian).
"""
import triton
import triton.language as tl


@triton.jit
def tile_coords(nseg, chunks, SB: tl.constexpr, BLOCK: tl.constexpr):
    """(segments [SB], positions [BLOCK]) of this program, int64."""
    pid = tl.program_id(0).to(tl.int64)
    group = pid // chunks
    chunk = pid - group * chunks
    seg = group * SB + tl.arange(0, SB).to(tl.int64)
    pos = chunk * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    return seg, pos


@triton.jit
def dense_tile(nseg, S, chunks, SB: tl.constexpr, BLOCK: tl.constexpr):
    """(seg [SB], idx [SB, BLOCK] flat element index, valid [SB, BLOCK])."""
    seg, pos = tile_coords(nseg, chunks, SB, BLOCK)
    idx = seg[:, None] * S + pos[None, :]
    valid = (seg < nseg)[:, None] & (pos < S)[None, :]
    return seg, idx, valid


@triton.jit
def packed_tile(nseg, S, C, W, SW, chunks, SB: tl.constexpr, BLOCK: tl.constexpr):
    """(seg [SB], idx [SB, BLOCK, 8] element index, valid [SB, BLOCK, 8], byte [SB, BLOCK] packed index,
    byte_valid [SB, BLOCK])."""
    seg, pos = tile_coords(nseg, chunks, SB, BLOCK)
    row = pos // W
    channel = (pos - row * W)[:, None] * 8 + tl.arange(0, 8)[None, :]  # [BLOCK, 8]
    idx = seg[:, None, None] * S + (row * C)[None, :, None] + channel[None, :, :]
    seg_ok = seg < nseg
    pos_ok = pos < SW
    valid = seg_ok[:, None, None] & pos_ok[None, :, None] & (channel < C)[None, :, :]
    byte = seg[:, None] * SW + pos[None, :]
    byte_valid = seg_ok[:, None] & pos_ok[None, :]
    return seg, idx, valid, byte, byte_valid


@triton.jit
def pack8(z):
    """bool [SB, BLOCK, 8] -> uint8 [SB, BLOCK]: bit i of the byte is z[..., i]."""
    shifts = tl.arange(0, 8)[None, None, :]
    return tl.sum(z.to(tl.int32) << shifts, axis=2).to(tl.uint8)


@triton.jit
def unpack8(byte):
    """uint8 [SB, BLOCK] -> bool [SB, BLOCK, 8]."""
    shifts = tl.arange(0, 8)[None, None, :]
    return ((byte.to(tl.int32)[:, :, None] >> shifts) & 1) != 0
