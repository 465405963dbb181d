"""Registrations of the native C++ CPU kernels (pointer + size calls into blkit._native)."""
import torch

from ... import _native
from ..._registry import register

NAME = "cpu"


def _as_uint8_bits(bits: torch.Tensor) -> torch.Tensor:
    if bits.dtype == torch.uint8:
        return bits
    if bits.dtype == torch.bool:
        return bits.view(torch.uint8)
    return (bits != 0).view(torch.uint8)


@register("pack_bits", NAME)
def pack_bits(bits):
    num_bits = bits.shape[-1]
    src = _as_uint8_bits(bits)
    out = torch.empty((*bits.shape[:-1], (num_bits + 7) // 8), dtype=torch.uint8)
    rows = bits.numel() // num_bits if num_bits else 0
    _native.pack_bits(src.data_ptr(), out.data_ptr(), rows, num_bits)
    return out


@register("unpack_bits", NAME)
def unpack_bits(packed, num_bits, dtype):
    out = torch.empty((*packed.shape[:-1], num_bits), dtype=torch.uint8)
    rows = packed.numel() // packed.shape[-1] if packed.shape[-1] else 0
    if num_bits:
        _native.unpack_bits(packed.data_ptr(), out.data_ptr(), rows, num_bits)
    if dtype == torch.bool:
        return out.view(torch.bool)
    return out if dtype == torch.uint8 else out.to(dtype)
