"""The authors' binary autoencoder (taming-transformers style encoder and generator).

Parameter names follow the authors (``encoder.blocks.<i>``, ``quantize.proj.0``, ``quantize.embed``,
``generator.blocks.<i>``), so their ``ae.*`` state dicts load unchanged; the generator's ``logsigma`` head
(only used for an ELBO estimate) is left out.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .quantizer import BinaryQuantizer

__all__ = ["BinaryAutoencoder", "ResBlock", "AttnBlock", "Downsample", "Upsample"]


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    """norm, SiLU, conv3x3, norm, SiLU, conv3x3 plus a skip (1x1 conv when the width changes; the authors
    create ``conv_out`` in every block, so it is kept for loading even when unused)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_out = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.conv_out(x) if self.in_channels != self.out_channels else x)


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions with 1x1-conv projections and a residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.norm(x)
        q, k, v = (proj(h).reshape(b, 1, c, hgt * wid).transpose(2, 3) for proj in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        return x + self.proj_out(y.transpose(2, 3).reshape(b, c, hgt, wid))


class Downsample(nn.Module):
    """Pad right/bottom by one, then a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Sequence(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def _encoder(in_channels, nf, ch_mult, res_blocks, attn_resolutions, img_size, emb_dim) -> _Sequence:
    blocks, res, width = [nn.Conv2d(in_channels, nf, 3, padding=1)], img_size, nf
    for level, mult in enumerate(ch_mult):
        for _ in range(res_blocks):
            blocks.append(ResBlock(width, nf * mult))
            width = nf * mult
            if res in attn_resolutions:
                blocks.append(AttnBlock(width))
        if level != len(ch_mult) - 1:
            blocks.append(Downsample(width))
            res //= 2
    blocks += [ResBlock(width, width), AttnBlock(width), ResBlock(width, width), group_norm(width),
               nn.Conv2d(width, emb_dim, 3, padding=1)]
    return _Sequence(blocks)


def _generator(out_channels, nf, ch_mult, res_blocks, attn_resolutions, img_size, emb_dim, norm_first) -> _Sequence:
    width = nf * ch_mult[-1]
    res = img_size // 2 ** (len(ch_mult) - 1)
    blocks = [group_norm(emb_dim)] if norm_first else []
    blocks += [nn.Conv2d(emb_dim, width, 3, padding=1), ResBlock(width, width), AttnBlock(width),
               ResBlock(width, width)]
    for level in reversed(range(len(ch_mult))):
        for _ in range(res_blocks):
            blocks.append(ResBlock(width, nf * ch_mult[level]))
            width = nf * ch_mult[level]
            if res in attn_resolutions:
                blocks.append(AttnBlock(width))
        if level != 0:
            blocks.append(Upsample(width))
            res *= 2
    blocks += [group_norm(width), nn.Conv2d(width, out_channels, 3, padding=1)]
    return _Sequence(blocks)


class BinaryAutoencoder(nn.Module):
    """images [B, in_channels, H, W] <-> bits uint8 [B, codebook_size, H / 2^(L-1), W / 2^(L-1)].

    Defaults are the released BAE_C64 checkpoint (64 bits per position, 16x16 latents for 256x256 images).
    ``attn_resolutions`` are feature-map sizes at ``img_size`` input, as in the authors' hparams (the
    architecture does not depend on the actual input size). The generator has ``int(res_blocks * gen_mul)``
    residual blocks per level; ``norm_first`` puts a GroupNorm before its first conv.
    """

    def __init__(self, *, in_channels: int = 3, out_channels=None, nf: int = 128, ch_mult=(1, 1, 2, 2, 4),
                 res_blocks: int = 2, attn_resolutions=(16,), img_size: int = 256, emb_dim: int = 256,
                 codebook_size: int = 64, norm_first: bool = True, gen_mul: float = 1.0, backend=None):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        ch_mult, attn_resolutions = tuple(int(m) for m in ch_mult), tuple(int(r) for r in attn_resolutions)
        gen_blocks = int(res_blocks * gen_mul + 1e-9)
        if not ch_mult or res_blocks < 1 or gen_blocks < 1:
            raise ValueError("ch_mult must be non-empty and res_blocks, int(res_blocks * gen_mul) >= 1")
        self._config = dict(in_channels=in_channels, out_channels=out_channels, nf=nf, ch_mult=ch_mult,
                            res_blocks=res_blocks, attn_resolutions=attn_resolutions, img_size=img_size,
                            emb_dim=emb_dim, codebook_size=codebook_size, norm_first=norm_first, gen_mul=gen_mul)
        self.codebook_size, self.downsample_factor = codebook_size, 2 ** (len(ch_mult) - 1)
        self.encoder = _encoder(in_channels, nf, ch_mult, res_blocks, attn_resolutions, img_size, emb_dim)
        self.quantize = BinaryQuantizer(codebook_size, emb_dim, emb_dim, backend=backend)
        self.generator = _generator(out_channels, nf, ch_mult, gen_blocks, attn_resolutions, img_size, emb_dim,
                                    norm_first)

    @property
    def backend(self):
        return self.quantize.backend

    @backend.setter
    def backend(self, value):
        self.quantize.backend = value

    def config(self) -> dict:
        return dict(self._config)

    def forward(self, images, deterministic: bool = False, seed=None):
        """Training/reconstruction pass: (reconstruction, codebook_loss, bits)."""
        out = self.quantize(self.encoder(images), deterministic=deterministic, seed=seed)
        return self.generator(out.z_q), out.codebook_loss, out.bits

    def encode(self, images: torch.Tensor, deterministic: bool = True, seed=0, offset=0) -> torch.Tensor:
        """images -> uint8 bits [B, C, h, w]; stochastic bits come from the Philox stream (seed, offset)."""
        return self.quantize(self.encoder(images), deterministic=deterministic, seed=seed, offset=offset).bits

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """bits [B, C, h, w], or [B, N, C] tokens of a square h = w = sqrt(N) grid -> images."""
        if bits.dim() == 3:
            bits = tokens_to_bits(bits)
        if bits.dim() != 4 or bits.shape[1] != self.codebook_size:
            raise ValueError(f"bits must have shape [B, {self.codebook_size}, h, w] or [B, N, {self.codebook_size}], "
                             f"got {tuple(bits.shape)}")
        return self.generator(self.quantize.embed_bits(bits))

    @classmethod
    def from_official(cls, state_dict, **overrides) -> "BinaryAutoencoder":
        """Build from the authors' autoencoder state dict (also with ``ae.``/``module.`` prefixes, and the
        whole BinaryGAN dict: ``disc.``, ``perceptual.`` and ``logsigma`` entries are ignored). The
        architecture is inferred from keys and shapes; override: ``img_size`` (default 256, only used to
        express attention levels as ``attn_resolutions``)."""
        from . import checkpoint

        return checkpoint.load_autoencoder(state_dict, **overrides)


def bits_to_tokens(bits: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, h * w, C] (row-major positions, the diffusion's layout)."""
    return bits.flatten(2).transpose(1, 2).contiguous()


def tokens_to_bits(tokens: torch.Tensor, height=None, width=None) -> torch.Tensor:
    """[B, N, C] -> [B, C, h, w]; square grid unless height and width are given."""
    b, n, c = tokens.shape
    if height is None or width is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"cannot reshape N = {n} positions into a square grid; pass height and width")
        height = width = side
    return tokens.transpose(1, 2).reshape(b, c, height, width)
