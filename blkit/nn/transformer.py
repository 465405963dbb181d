"""The authors' Bernoulli-diffusion denoiser (``TransformerBD``), on torch matmuls and SDPA.

Parameter names equal the authors' so their ``_denoise_fn.*`` state dicts load unchanged:
``tok_emb``, ``pos_emb``, ``time_step_embedding.{l0,linear}``, ``cls_embedding``,
``blocks.i.{ln1,attn.qkv,attn.proj,gamma_1,ln2,mlp.0,mlp.2,gamma_2}`` (+ ``ln1_5``, ``cross.*``,
``gamma_1_5`` in the cross-attention variant), ``ln_f``, ``head``.

Sequence layout: N latent tokens, then the time token, then (optional) the class/text token; the head
reads the first N outputs only.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BinaryTransformer", "sincos_pos_embed_2d"]


def sincos_pos_embed_2d(dim: int, height: int, width: int) -> torch.Tensor:
    """float32 [height * width, dim]: the first half of the channels encodes the column index, the second
    half the row index; each half is [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (dim / 4))."""
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4 for the 2-D sin-cos embedding, got {dim}")
    quarter = dim // 4
    freqs = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                                torch.arange(width, dtype=torch.float64), indexing="ij")

    def half(pos):
        angles = pos.reshape(-1, 1) * freqs
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([half(cols), half(rows)], dim=1).float()


class TimeTokenEmbedding(nn.Module):
    """Time index -> one token: sinusoid of (t / num_steps * 4000), then Linear, SiLU, Linear."""

    def __init__(self, dim: int, num_steps: int, rescale: float = 4000.0):
        super().__init__()
        if dim % 2 or dim < 4:
            raise ValueError(f"dim must be even and >= 4, got {dim}")
        self.dim, self.num_steps, self.rescale = dim, num_steps, rescale
        self.l0 = nn.Linear(dim, dim)
        self.linear = nn.Linear(dim, dim)

    def forward(self, time_steps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=time_steps.device, dtype=torch.float32) * -scale)
        pos = time_steps.float() / float(self.num_steps) * self.rescale
        angles = pos[:, None] * freqs[None, :]
        emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
        return self.linear(F.silu(self.l0(emb))).unsqueeze(1)


def _split_heads(x: torch.Tensor, parts: int, heads: int) -> torch.Tensor:
    """[B, L, parts * heads * d] -> [parts, B, heads, L, d]."""
    b, n, width = x.shape
    return x.view(b, n, parts, heads, width // (parts * heads)).permute(2, 0, 3, 1, 4)


def _merge_heads(y: torch.Tensor) -> torch.Tensor:
    b, h, n, d = y.shape
    return y.transpose(1, 2).reshape(b, n, h * d)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.qkv.bias)

    def forward(self, x):
        q, k, v = _split_heads(self.qkv(x), 3, self.num_heads)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Queries from the tokens, keys/values from a conditioning sequence [B, L, cond_dim]; a learned
    null sequence stands in when the condition is None (classifier-free guidance)."""

    def __init__(self, dim: int, num_heads: int, cond_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.kv = nn.Linear(cond_dim, 2 * dim)
        self.query = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.null_emb = nn.Parameter(torch.randn(1, 1, cond_dim) * 0.01)

    def forward(self, x, cond):
        if cond is None:
            cond = self.null_emb.expand(x.shape[0], -1, -1)
        k, v = _split_heads(self.kv(cond), 2, self.num_heads)
        q = _split_heads(self.query(x), 1, self.num_heads)[0]
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class Block(nn.Module):
    """Pre-LayerNorm block with LayerScale: x += g1 * attn(ln1 x); [x += g15 * cross(ln1_5 x, c)];
    x += g2 * mlp(ln2 x) with an exact-GELU MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, cond_dim=None):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.gamma_1 = nn.Parameter(torch.ones(dim))
        if cond_dim is not None:
            self.ln1_5 = nn.LayerNorm(dim)
            self.cross = CrossAttention(dim, num_heads, cond_dim)
            self.gamma_1_5 = nn.Parameter(torch.ones(dim))
        else:
            self.cross = None
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.gamma_2 = nn.Parameter(torch.ones(dim))

    def forward(self, x, cond=None):
        x = x + self.gamma_1 * self.attn(self.ln1(x))
        if self.cross is not None:
            x = x + self.gamma_1_5 * self.cross(self.ln1_5(x), cond)
        return x + self.gamma_2 * self.mlp(self.ln2(x))


class BinaryTransformer(nn.Module):
    """The denoiser: bits [B, N, C] and time indices (t - 1) [B] -> logits [B, N, C].

    Args:
      codebook_size: C, binary channels per position.
      latent_shape: (h, w) of the latent grid, N = h * w (an int N means a square grid).
      dim, depth, num_heads, mlp_dim: width, number of blocks, heads (dim % num_heads == 0) and MLP width
        (default 4 * dim).
      num_steps: the diffusion's T; the time embedding divides t by it (the authors pass their
        ``sample_steps`` setting here, which equals T in their released recipes).
      num_classes: adds a class token (``cls_embedding`` = nn.Embedding); label: int64 [B].
      cond_dim: with ``cross_attention=False`` a text/vector token (``cls_embedding`` = nn.Linear(cond_dim,
        dim)), label: float [B, cond_dim]; with ``cross_attention=True`` every block cross-attends to
        label: float [B, L, cond_dim].
    label=None runs the unconditional model (no class token / the learned null context).
    """

    def __init__(self, codebook_size: int = 64, latent_shape=(16, 16), dim: int = 768, depth: int = 24,
                 num_heads: int = 12, mlp_dim=None, num_steps: int = 64, num_classes=None, cond_dim=None,
                 cross_attention: bool = False):
        super().__init__()
        if isinstance(latent_shape, int):
            side = math.isqrt(latent_shape)
            if side * side != latent_shape:
                raise ValueError(f"latent_shape={latent_shape} is not a square number; pass (h, w)")
            latent_shape = (side, side)
        latent_shape = tuple(int(s) for s in latent_shape)
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        if num_classes is not None and cond_dim is not None:
            raise ValueError("give num_classes (class token) or cond_dim (text conditioning), not both")
        if cross_attention and cond_dim is None:
            raise ValueError("cross_attention=True needs cond_dim (the width of the conditioning sequence)")
        self.codebook_size, self.latent_shape, self.dim = codebook_size, latent_shape, dim
        self.num_positions = latent_shape[0] * latent_shape[1]
        self.depth, self.num_heads = depth, num_heads
        self.mlp_dim = mlp_dim or 4 * dim
        self.num_steps, self.num_classes, self.cond_dim = num_steps, num_classes, cond_dim
        self.cross_attention = cross_attention

        self.tok_emb = nn.Embedding(codebook_size, dim)
        nn.init.normal_(self.tok_emb.weight, 0.0, 0.02)
        self.pos_emb = nn.Parameter(sincos_pos_embed_2d(dim, *latent_shape).unsqueeze(0))
        self.time_step_embedding = TimeTokenEmbedding(dim, num_steps)
        if num_classes is not None:
            self.cls_embedding = nn.Embedding(num_classes, dim)
        elif cond_dim is not None and not cross_attention:
            self.cls_embedding = nn.Linear(cond_dim, dim)
        else:
            self.cls_embedding = None
        block_cond = cond_dim if cross_attention else None
        self.blocks = nn.ModuleList(Block(dim, num_heads, self.mlp_dim, block_cond) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)

    @property
    def conditional(self) -> bool:
        return self.cls_embedding is not None or self.cross_attention

    def config(self) -> dict:
        return dict(codebook_size=self.codebook_size, latent_shape=self.latent_shape, dim=self.dim,
                    depth=self.depth, num_heads=self.num_heads, mlp_dim=self.mlp_dim, num_steps=self.num_steps,
                    num_classes=self.num_classes, cond_dim=self.cond_dim, cross_attention=self.cross_attention)

    def forward(self, x: torch.Tensor, label=None, time_steps=None) -> torch.Tensor:
        if time_steps is None:
            raise ValueError("time_steps (t - 1, int64 [B]) is required")
        if x.dim() != 3 or x.shape[-1] != self.codebook_size or x.shape[1] > self.num_positions:
            raise ValueError(f"x must have shape [B, N <= {self.num_positions}, {self.codebook_size}], "
                             f"got {tuple(x.shape)}")
        if label is not None and not self.conditional:
            raise ValueError("label was given but this denoiser is unconditional (no class token, no cross-attention)")
        n = x.shape[1]
        weight = self.tok_emb.weight
        h = (x.to(weight.dtype) * 2 - 1) @ weight + self.pos_emb[:, :n]
        tokens = [h, self.time_step_embedding(time_steps)]
        if label is not None and self.cls_embedding is not None:
            tokens.append(self.cls_embedding(label).unsqueeze(1))
        h = torch.cat(tokens, dim=1)
        cond = label if self.cross_attention else None
        for block in self.blocks:
            h = block(h, cond)
        return self.head(self.ln_f(h[:, :n]))

    @classmethod
    def from_official(cls, state_dict, **overrides) -> "BinaryTransformer":
        """Build from the authors' denoiser state dict (``_denoise_fn.`` and ``module.`` prefixes accepted);
        see :func:`blkit.nn.checkpoint.transformer_config`."""
        from . import checkpoint

        return checkpoint.load_transformer(state_dict, **overrides)
