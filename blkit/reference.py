"""A faithful pure-PyTorch re-implementation of the authors' tensor program (DESIGN §1).

Same op sequence as the authors' code: float32 schedule buffers built their way, q_sample through
``torch.bernoulli``, the training loss with its per-option branches, the sampler with its per-step
``.item()`` and, when steps are skipped, its chain of one-step transitions. Its speed is what users run
today: it is the baseline of every benchmark and an oracle of the tests. Its random numbers come from
torch's generator, not from blkit's Philox stream, so it agrees with blkit.ops in distribution.

Where the authors' code and DESIGN §1 differ, DESIGN wins: the p_flip prediction of the clean bit is
``x_t ? 1 - sigmoid(l) : sigmoid(l)`` (the authors compute ``sigmoid(x_t ? 1 - l : l)`` in the loss), and
class balancing is a separate switch (the authors tie it to ``focal``).
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Scheduler(nn.Module):
    """The authors' noise scheduler: float32 buffers k_final, b_final, beta (= keep), cumbeta."""

    def __init__(self, steps: int = 64, beta_type: str = "linear"):
        super().__init__()
        if beta_type == "linear":
            beta = 1 - 1 / (steps - np.arange(1, steps + 1) + 1)
            k_final, b_final = [1.0], [0.0]
            for i in range(steps):
                k_final.append(k_final[-1] * beta[i])
                b_final.append(beta[i] * b_final[-1] + 0.5 * (1 - beta[i]))
            k_final, b_final = np.array(k_final[1:]), np.array(b_final[1:])
        elif beta_type in ("cos", "sigmoid"):
            grid = np.linspace(0.0, 1.0, steps + 1)
            if beta_type == "cos":
                k_all = 0.5 + 0.5 * np.cos(grid * np.pi)
            else:
                sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
                v_start, v_end = sig(0 / 0.8), sig(3 / 0.8)
                k_all = np.clip((v_end - sig((grid * 3) / 0.8)) / (v_end - v_start), 0.0, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                beta = np.array([k_all[i + 1] / k_all[i] for i in range(steps)])
            k_final, b_final = k_all[1:], ((1 - k_all) * 0.5)[1:]
        else:
            raise ValueError(f"beta_type must be 'linear', 'cos' or 'sigmoid', got {beta_type!r}")
        self.num_timesteps = steps
        self.register_buffer("k_final", torch.Tensor(np.hstack([1, k_final])))
        self.register_buffer("b_final", torch.Tensor(np.hstack([0, b_final])))
        self.register_buffer("beta", torch.Tensor(np.hstack([1, beta])))
        self.register_buffer("cumbeta", torch.cumprod(self.beta, 0))

    def one_step(self, x, t):
        k = self.beta[t].view(-1, *([1] * (x.ndim - 1)))
        return x * k + 0.5 * (1 - k)

    def forward(self, x, t):
        k = self.k_final[t].view(-1, *([1] * (x.ndim - 1)))
        b = self.b_final[t].view(-1, *([1] * (x.ndim - 1)))
        return k * x + b


# --- training -----------------------------------------------------------------------------------
def q_sample(scheduler: Scheduler, x_0, t):
    """x_t ~ q(x_t | x_0) as float 0/1 through torch.bernoulli; t: int64 [B]."""
    return torch.bernoulli(scheduler(x_0 * 1.0, t))


def focal_loss(inputs, targets, gamma=0.0, balance=True):
    """Element loss alpha * BCEWithLogits * m**gamma (authors' focal_loss with alpha=-1 as balance)."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    p_t = (1 - p_t).clamp(min=1e-6, max=1 - 1e-6)
    loss = ce_loss * (p_t**gamma)
    if balance:
        neg_weight = targets.sum(tuple(range(1, targets.ndim))) / targets[0].numel()
        neg_weight = neg_weight.view(-1, *([1] * (targets.ndim - 1)))
        alpha_t = (1 - neg_weight) * targets + neg_weight * (1 - targets)
        loss = alpha_t * loss
    return loss


def _clean_bit_probability(logits, x_t, p_flip):
    """phat = P(x_0 = 1) from the network output, in the authors' arithmetic form."""
    s = torch.sigmoid(logits)
    return x_t * (1 - s) + (1 - x_t) * s if p_flip else s


def loss_from_logits(logits, x_0, x_t_in, t, scheduler: Scheduler, *, p_flip=True, balance=True, gamma=0.0,
                     weighting="mean", aux_weight=0.0):
    """The authors' _train_loss after the denoiser call. x_0, x_t_in: float 0/1 [B, N, C]; t: int64 [B].

    Returns the stats dict {"loss", "bce_loss", "acc"} (+ "aux_loss" when aux_weight > 0).
    """
    num_timesteps = scheduler.num_timesteps
    if p_flip:
        x_0_ = torch.logical_xor(x_0, x_t_in) * 1.0
        kl_loss = focal_loss(logits, x_0_, gamma=gamma, balance=balance)
    else:
        kl_loss = focal_loss(logits, x_0, gamma=gamma, balance=balance)
    x_0_l = _clean_bit_probability(logits, x_t_in, p_flip)

    if weighting == "weighted":
        weight = (1 - ((t - 1) / num_timesteps)).view(-1, *([1] * (x_0.ndim - 1)))
    elif weighting == "mean":
        weight = 1.0
    else:
        raise NotImplementedError(weighting)
    loss = (weight * kl_loss).mean()
    kl_loss = kl_loss.mean()
    with torch.no_grad():
        acc = (((x_0_l > 0.5) * 1.0 == x_0) * 1.0).sum() / float(x_0.numel())
    stats = {"loss": loss, "bce_loss": kl_loss, "acc": acc}

    if aux_weight > 0:
        ftr = (((t - 1) == 0) * 1.0).view(-1, *([1] * (x_0.ndim - 1)))
        x_0_logits = torch.cat([x_0_l.unsqueeze(-1), (1 - x_0_l).unsqueeze(-1)], dim=-1)
        x_t_logits = torch.cat([x_t_in.unsqueeze(-1), (1 - x_t_in).unsqueeze(-1)], dim=-1)
        p_EV_qxtmin_x0 = scheduler(x_0_logits, t - 1)
        q_one_step = scheduler.one_step(x_t_logits, t)
        unnormed_probs = p_EV_qxtmin_x0 * q_one_step
        unnormed_probs = unnormed_probs / (unnormed_probs.sum(-1, keepdims=True) + 1e-6)
        x_tm1_logits = unnormed_probs[..., 0] * (1 - ftr) + x_0_l * ftr
        x_0_gt = torch.cat([x_0.unsqueeze(-1), (1 - x_0).unsqueeze(-1)], dim=-1)
        unnormed_gt = scheduler(x_0_gt, t - 1) * q_one_step
        unnormed_gt = unnormed_gt / (unnormed_gt.sum(-1, keepdims=True) + 1e-6)
        x_tm1_gt = unnormed_gt[..., 0]
        aux_loss = F.binary_cross_entropy(x_tm1_logits.clamp(min=1e-6, max=1.0 - 1e-6),
                                          x_tm1_gt.clamp(min=0.0, max=1.0), reduction="none")
        aux_loss = (weight * aux_loss).mean()
        stats["loss"] = aux_weight * aux_loss + loss
        stats["aux_loss"] = aux_loss
    return stats


def train_loss(denoise_fn, x_0, scheduler: Scheduler, label=None, **options):
    """The authors' full training loss: t ~ U{1..T}, q_sample, denoiser at t - 1, loss_from_logits."""
    x_0 = x_0 * 1.0
    t = torch.randint(1, scheduler.num_timesteps + 1, (x_0.size(0),), device=x_0.device).long()
    x_t_in = q_sample(scheduler, x_0, t)
    if label is not None:
        logits = denoise_fn(x_t_in, label=label, time_steps=t - 1)
    else:
        logits = denoise_fn(x_t_in, time_steps=t - 1)
    return loss_from_logits(logits, x_0, x_t_in, t, scheduler, **options)


# --- sampling -----------------------------------------------------------------------------------
def posterior(logits, x_t, t: int, t_p: int, scheduler: Scheduler, *, temp=1.0, p_flip=True, uncond_logits=None,
              guidance=0.0):
    """P(x_{t_p} = 1) by the authors' chain of one-step transitions (phat when t_p = 0); float 0/1 x_t."""
    b = x_t.shape[0]
    x_0_logits = logits / temp
    if uncond_logits is not None:
        x_0_logits = (1 + guidance) * x_0_logits - guidance * (uncond_logits / temp)
    x_0_logits = torch.sigmoid(x_0_logits)
    if p_flip:
        x_0_logits = x_t * (1 - x_0_logits) + (1 - x_t) * x_0_logits
    if t_p == 0:
        return x_0_logits
    t_vec = torch.full((b,), t, device=x_t.device, dtype=torch.long)
    t_p_vec = torch.full((b,), t_p, device=x_t.device, dtype=torch.long)
    x_0_logits = torch.cat([x_0_logits.unsqueeze(-1), (1 - x_0_logits).unsqueeze(-1)], dim=-1)
    q_one_step = torch.cat([x_t.unsqueeze(-1), (1 - x_t).unsqueeze(-1)], dim=-1)
    p_EV_qxtmin_x0 = scheduler(x_0_logits, t_p_vec)
    for mns in range(t - t_p):
        q_one_step = scheduler.one_step(q_one_step, t_vec - mns)
    unnormed_probs = p_EV_qxtmin_x0 * q_one_step
    unnormed_probs = unnormed_probs / unnormed_probs.sum(-1, keepdims=True)
    return unnormed_probs[..., 0]


def sample_step(logits, x_t, t: int, t_p: int, scheduler: Scheduler, *, temp=1.0, p_flip=True, uncond_logits=None,
                guidance=0.0, mask=None, latent=None):
    """One iteration of the authors' sampling loop after the denoiser call; float 0/1 x_t -> x_{t_p}."""
    t_vec = torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long)
    probs = posterior(logits, x_t, t, t_p, scheduler, temp=temp, p_flip=p_flip, uncond_logits=uncond_logits,
                      guidance=guidance)
    if not t_vec[0].item() == 1 and t_p != 0:  # the authors' per-step host synchronisation
        x_tm1_p = torch.bernoulli(probs)
    else:
        x_tm1_p = (probs > 0.5) * 1.0
    if mask is not None:
        x_tm1_p = latent * mask + x_tm1_p * (1 - mask)
    return x_tm1_p


def sampling_steps(num_timesteps: int, sample_steps: int):
    steps = np.array(range(1, num_timesteps + 1))
    if sample_steps != num_timesteps:
        idx = np.array(np.linspace(0.0, 1.0, sample_steps) * (num_timesteps - 1), int)
        steps = steps[idx]
    return [int(s) for s in steps[::-1]]


@torch.no_grad()
def sample(denoise_fn, scheduler: Scheduler, batch_size: int, num_positions: int, num_bits: int, *,
           sample_steps=None, temp=1.0, p_flip=True, label=None, guidance=None, mask=None, latent=None,
           return_all=False, device="cpu"):
    """The authors' sampler: x_T ~ Bernoulli(0.5), one denoiser call and sample_step per grid entry."""
    sample_steps = sample_steps or scheduler.num_timesteps
    x_t = torch.bernoulli(0.5 * torch.ones((batch_size, num_positions, num_bits), device=device))
    if mask is not None:
        x_t = latent * mask + x_t * (1 - mask)
    steps = sampling_steps(scheduler.num_timesteps, sample_steps)
    x_all = [x_t] if return_all else None
    for i, t in enumerate(steps):
        t_vec = torch.full((batch_size,), t, device=device, dtype=torch.long)
        kwargs = {} if label is None else {"label": label}
        logits = denoise_fn(x_t, time_steps=t_vec - 1, **kwargs)
        uncond = None
        if guidance is not None:
            uncond = denoise_fn(x_t, time_steps=t_vec - 1)
        t_p = steps[i + 1] if i + 1 < len(steps) else 0
        x_t = sample_step(logits, x_t, t, t_p, scheduler, temp=temp, p_flip=p_flip, uncond_logits=uncond,
                          guidance=guidance or 0.0, mask=mask, latent=latent)
        if return_all:
            x_all.append(x_t)
    return torch.cat(x_all, 0) if return_all else x_t


# --- autoencoder bottleneck ---------------------------------------------------------------------
def binary_quantize(probs, deterministic=False):
    """Straight-through binary quantizer: forward Bernoulli(p) or (p > 0.5), gradient identity to p."""
    z_b = (probs > 0.5) * 1.0 if deterministic else torch.bernoulli(probs)
    return z_b.detach() + probs - probs.detach()


def embed_bits(z, embed_weight):
    """z_q = einsum('bnhw,nd->bdhw', z, W): bits [B, C, h, w] -> [B, emb_dim, h, w]."""
    return torch.einsum("b n h w, n d -> b d h w", z, embed_weight)


__all__ = ["Scheduler", "q_sample", "focal_loss", "loss_from_logits", "train_loss", "posterior", "sample_step",
           "sampling_steps", "sample", "binary_quantize", "embed_bits"]
