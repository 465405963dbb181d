"""Philox4x32-10 and Triton's ``uint_to_uniform_float`` in int64 tensor arithmetic (DESIGN §2).

Every 32-bit word lives in an int64 tensor as a value in [0, 2**32). Products of two such words would
overflow int64, so the 32x32 -> 64-bit multiply is split into 16-bit halves, which is exact.
"""
import torch

_MASK32 = 0xFFFFFFFF
_ROUND_A = 0xD2511F53  # multiplier of counter word 0
_ROUND_B = 0xCD9E8D57  # multiplier of counter word 2
_KEY_A = 0x9E3779B9  # Weyl increments of the key
_KEY_B = 0xBB67AE85
UNIFORM_SCALE = 4.6566127342e-10  # rounds to 2**-31 * (1 - 2**-24) in float32


def _mulhilo(multiplier: int, x: torch.Tensor):
    """(hi32, lo32) of the 64-bit product multiplier * x, x in [0, 2**32)."""
    m_hi, m_lo = multiplier >> 16, multiplier & 0xFFFF
    hi_part = x * m_hi  # < 2**48
    lo_part = x * m_lo  # < 2**48
    hi = (hi_part + (lo_part >> 16)) >> 16
    lo = (((hi_part & 0xFFFF) << 16) + lo_part) & _MASK32
    return hi, lo


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds; counters are int64 tensors (or ints) of 32-bit words, keys are ints or tensors."""
    for _ in range(10):
        hi_b, lo_b = _mulhilo(_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + _KEY_A) & _MASK32
        k1 = (k1 + _KEY_B) & _MASK32
    return c0, c1, c2, c3


def uniform_from_word(word: torch.Tensor) -> torch.Tensor:
    """Triton's uint_to_uniform_float: reinterpret as int32, map v < 0 to ~v, scale in float32."""
    signed = torch.where(word >= 2**31, word - 2**32, word)
    signed = torch.where(signed < 0, ~signed, signed)
    return signed.to(torch.int32).to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32)

