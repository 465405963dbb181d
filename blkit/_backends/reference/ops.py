"""The "reference" backend: every op in plain PyTorch tensor code, on any device.

Same contract as the fused kernels (DESIGN §1-3): Philox uniforms in int64 arithmetic, step math in
float32 through the closed form, loss gradient written out analytically (no autograd inside a custom op).
"""
import math

import torch
import torch.nn.functional as F

from ..._registry import register
from .philox import philox4x32_10, uniform_from_word

NAME = "reference"
_MASK32 = 0xFFFFFFFF


def uniforms(rng: torch.Tensor, shape) -> torch.Tensor:
    """u_i = tl.rand(seed, offset + i) over a tensor of ``shape`` (row-major i); rng = int64 [seed, offset]."""
    numel = 1
    for s in shape:
        numel *= s
    seed, offset = rng[0], rng[1]
    counter = torch.arange(numel, dtype=torch.int64, device=rng.device) + offset  # wraps mod 2**64
    zero = torch.zeros_like(counter)
    word, _, _, _ = philox4x32_10(counter & _MASK32, (counter >> 32) & _MASK32, zero, zero,
                                  seed & _MASK32, (seed >> 32) & _MASK32)
    return uniform_from_word(word).reshape(shape)


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x != 0


def _per_sample(x: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B, prod(...)] (also when some dimension is 0)."""
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


_SHIFTS = torch.arange(8, dtype=torch.uint8)


@register("pack_bits", NAME)
def pack_bits(bits):
    num_bits = bits.shape[-1]
    width = (num_bits + 7) // 8
    padded = F.pad(_bits(bits).to(torch.uint8), (0, width * 8 - num_bits))
    padded = padded.reshape(*bits.shape[:-1], width, 8)
    return (padded << _SHIFTS.to(bits.device)).sum(-1, dtype=torch.uint8)


@register("unpack_bits", NAME)
def unpack_bits(packed, num_bits, dtype):
    bits = (packed.unsqueeze(-1) >> _SHIFTS.to(packed.device)) & 1
    return bits.reshape(*packed.shape[:-1], packed.shape[-1] * 8)[..., :num_bits].to(dtype).contiguous()


@register("xor_bits", NAME)
def xor_bits(a, b):
    if a.dtype in (torch.bool, torch.uint8):
        return a ^ b
    return (_bits(a) ^ _bits(b)).to(torch.uint8)


_POPCOUNT_TABLE = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64)


@register("popcount", NAME)
def popcount(packed, dim):
    counts = _POPCOUNT_TABLE.to(packed.device)[packed.to(torch.int64)]
    return counts.sum(dim)


@register("bernoulli", NAME)
def bernoulli(probs, rng, packed):
    z = (uniforms(rng, probs.shape) < probs.float()).to(torch.uint8)
    return pack_bits(z) if packed else z


def _rows(coef: torch.Tensor, like: torch.Tensor, column: int) -> torch.Tensor:
    """Column of a per-step table, shaped to broadcast over ``like`` (row r = sample r, or one row)."""
    col = coef[:, column]
    return col.reshape(()) if coef.shape[0] == 1 else col.reshape(-1, *([1] * (like.dim() - 1)))


@register("q_sample", NAME)
def q_sample(x0, coef, rng, packed):
    x0b = _bits(x0)
    p = torch.where(x0b, _rows(coef, x0, 1), _rows(coef, x0, 0))
    x_t = uniforms(rng, x0.shape) < p
    residual = x_t ^ x0b
    flips = _per_sample(residual).sum(1)
    x_t, residual = x_t.to(torch.uint8), residual.to(torch.uint8)
    if packed:
        x_t, residual = pack_bits(x_t), pack_bits(residual)
    return x_t, residual, flips


def _guided_sigmoid(logits, temperature, uncond_logits, guidance_scale):
    l = logits.float() / temperature
    if uncond_logits is not None:
        l = (1 + guidance_scale) * l - guidance_scale * (uncond_logits.float() / temperature)
    return torch.sigmoid(l)


def _posterior_and_phat(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed):
    """(pi, phat, final) in float32: pi = P(x_{t'} = 1), phat = P(x_0 = 1), final = (t' == 0) per row."""
    x = unpack_bits(x_t, logits.shape[-1], torch.bool) if packed else _bits(x_t)
    s = _guided_sigmoid(logits, temperature, uncond_logits, guidance_scale)
    c0, c1, c2, c3 = (_rows(coef, s, i) for i in range(4))
    if p_flip:
        phat = torch.where(x, 1 - s, s)
        flip = (c0 * s + c1) / (c2 * s + c3)
        pi = torch.where(x, 1 - flip, flip)
    else:
        phat = s
        a1, a0 = c0 * s + c1, c0 * (1 - s) + c1
        q1, q0 = torch.where(x, c2, c3), torch.where(x, c3, c2)
        pi = a1 * q1 / (a1 * q1 + a0 * q0)
    final = _rows(coef, s, 4) != 0
    return pi, phat, final


@register("posterior", NAME)
def posterior(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed):
    pi, phat, final = _posterior_and_phat(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale,
                                          packed)
    return torch.where(final, phat, pi)


@register("sample_step", NAME)
def sample_step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed):
    pi, phat, final = _posterior_and_phat(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale,
                                          packed)
    out = torch.where(final, phat > 0.5, uniforms(rng, logits.shape) < pi)
    if mask is not None:
        out = torch.where(_bits(mask), _bits(known), out)
    out = out.to(torch.uint8)
    return pack_bits(out) if packed else out


def _bce_with_logits(l, y):
    return l.clamp_min(0) - l * y + torch.log1p(torch.exp(-l.abs()))


@register("diffusion_loss", NAME)
def diffusion_loss(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad):
    """Element loss tw * (alpha * bce * m**gamma + aux_weight * aux), and its derivative by l, in float32."""
    eps = 1e-6
    l = logits.float()
    x, x0f = _bits(x_t).float(), _bits(x0).float()
    y = (x != x0f).float() if p_flip else x0f
    p = torch.sigmoid(l)
    dp = p * (1 - p)
    bce, d_el = _bce_with_logits(l, y), p - y
    if gamma != 0.0:
        m_raw = 1 - (p * y + (1 - p) * (1 - y))
        m = m_raw.clamp(eps, 1 - eps)
        dm = torch.where((m_raw >= eps) & (m_raw <= 1 - eps), -(2 * y - 1) * dp, torch.zeros_like(m))
        d_el = d_el * m**gamma + bce * gamma * m ** (gamma - 1) * dm
        bce = bce * m**gamma
    if balance:
        w = _per_sample(y).mean(1).reshape(-1, *([1] * (y.dim() - 1)))
        alpha = (1 - w) * y + w * (1 - y)
        bce, d_el = alpha * bce, alpha * d_el
    tw = _rows(coef, l, 0)
    loss, grad = tw * bce, tw * d_el
    if aux_weight > 0.0:
        aux, d_aux = _aux_term(p, dp, x, x0f, coef, p_flip)
        loss, grad = loss + aux_weight * tw * aux, grad + aux_weight * tw * d_aux
    if reduction == "mean":
        scale = 1.0 / max(loss.numel(), 1)
        loss, grad = loss.mean(), grad * scale
    elif reduction == "sum":
        loss = loss.sum()
    return loss, grad if need_grad else l.new_empty((0,))


def _aux_term(p, dp, x, x0f, coef, p_flip):
    """BCE between the predicted and the true posterior of x_{t-1} (DESIGN §1.3), and its d/dl."""
    eps = 1e-6
    k_prev, b_prev, keep, first = (_rows(coef, p, i) for i in range(1, 5))
    q1 = keep * x + (1 - keep) / 2
    q0 = keep * (1 - x) + (1 - keep) / 2

    def post(v):
        n1, n0 = (k_prev * v + b_prev) * q1, (k_prev * (1 - v) + b_prev) * q0
        total = n1 + n0 + eps
        return n1 / total, (k_prev * q1 * total - n1 * k_prev * (q1 - q0)) / total**2

    if p_flip:
        xhat, dxhat = torch.where(x != 0, 1 - p, p), torch.where(x != 0, -dp, dp)
    else:
        xhat, dxhat = p, dp
    post_pred, dpost = post(xhat)
    is_first = first != 0
    pred = torch.where(is_first, xhat, post_pred)
    dpred = torch.where(is_first, torch.ones_like(dpost), dpost) * dxhat
    target = post(x0f)[0].clamp(0.0, 1.0)
    pc = pred.clamp(eps, 1 - eps)
    aux = -(target * torch.log(pc) + (1 - target) * torch.log(1 - pc))
    inside = (pred >= eps) & (pred <= 1 - eps)
    d_aux = torch.where(inside, (pc - target) / (pc * (1 - pc)), torch.zeros_like(pc)) * dpred
    return aux, d_aux


@register("binary_quantize", NAME)
def binary_quantize(probs, rng, deterministic):
    pf = probs.float()
    z = pf > 0.5 if deterministic else uniforms(rng, probs.shape) < pf
    return z.to(probs.dtype)
