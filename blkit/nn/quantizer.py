"""The binary bottleneck of the autoencoder (DESIGN §1.5) on ``blkit.ops.binary_quantize``."""
import typing

import torch
from torch import nn

from .. import ops

__all__ = ["BinaryQuantizer", "QuantizerOutput"]


class QuantizerOutput(typing.NamedTuple):
    z_q: torch.Tensor  # [B, emb_dim, h, w] embedded bits (straight-through gradient to probs)
    bits: torch.Tensor  # uint8 [B, C, h, w]
    probs: torch.Tensor  # [B, C, h, w] Bernoulli probabilities
    codebook_loss: torch.Tensor  # scalar, the authors' code_book_loss (see BinaryQuantizer.forward)


def random_seed(device) -> torch.Tensor:
    """A fresh int64 [1] seed drawn from torch's generator on ``device`` (works under torch.compile)."""
    return torch.randint(0, 2**62, (1,), dtype=torch.int64, device=device)


class BinaryQuantizer(nn.Module):
    """probs = sigmoid(conv1x1(h)); bits ~ Bernoulli(probs) (or probs > 0.5); z_q = einsum(bits, W).

    Parameter names follow the authors (``proj.0`` = the 1x1 conv, ``embed`` = the [C, emb_dim] map).
    """

    def __init__(self, codebook_size: int, emb_dim: int, in_channels: int, *, backend=None):
        super().__init__()
        self.codebook_size, self.emb_dim, self.backend = codebook_size, emb_dim, backend
        self.proj = nn.Sequential(nn.Conv2d(in_channels, codebook_size, 1), nn.Sigmoid())
        self.embed = nn.Embedding(codebook_size, emb_dim)

    def embed_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """bits [B, C, h, w] (any 0/1 dtype) -> [B, emb_dim, h, w]."""
        weight = self.embed.weight
        return torch.einsum("bnhw,nd->bdhw", bits.to(weight.dtype), weight)

    def forward(self, h: torch.Tensor, deterministic: bool = False, seed=None, offset=0) -> QuantizerOutput:
        """Stochastic bits use the Philox stream (``seed``, ``offset``); ``seed=None`` draws a fresh seed from
        torch's generator. ``codebook_loss`` is the authors' ``mean(sigmoid(p) * (1 - sigmoid(p)))`` of the
        already-sigmoided ``p`` (their code applies the sigmoid twice; kept for parity, weight 0 by default)."""
        probs = self.proj(h)
        if seed is None:
            seed = 0 if deterministic else random_seed(probs.device)
        z = ops.binary_quantize(probs, seed, offset, deterministic=deterministic, backend=self.backend)
        s = torch.sigmoid(probs)
        codebook_loss = (s * (1 - s)).mean()
        return QuantizerOutput(self.embed_bits(z), z.detach().to(torch.uint8), probs, codebook_loss)
