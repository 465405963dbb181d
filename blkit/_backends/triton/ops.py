"""Registrations of the Triton kernels (blkit.kernels); one launch per op call."""
import torch
import triton

from ..._registry import register
from ...kernels import random as random_kernels

NAME = "triton"


@register("bernoulli", NAME)
def bernoulli(probs, rng, packed):
    n = probs.numel()
    num_bits = probs.shape[-1] if probs.dim() else 1
    width = (num_bits + 7) // 8 if packed else num_bits
    shape = (*probs.shape[:-1], width) if packed else probs.shape
    out = torch.empty(shape, dtype=torch.uint8, device=probs.device)
    if n:
        block = random_kernels.BERNOULLI_BLOCK
        rows = n // num_bits
        grid = (triton.cdiv(rows * width, block) if packed else triton.cdiv(n, block),)
        random_kernels.bernoulli_kernel[grid](probs, out, rng, n, num_bits, width, PACKED=packed, BLOCK=block)
    return out
