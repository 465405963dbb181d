"""float64 oracles written directly from DESIGN §1 (independent of blkit.ops and blkit.reference)."""
import torch


def _per_sample(v, like):
    v = torch.as_tensor(v, dtype=torch.float64)
    return v.reshape(-1, *([1] * (like.dim() - 1))) if v.dim() else v


def guided_logits(logits, temperature=1.0, uncond_logits=None, guidance_scale=0.0):
    l = logits.double() / temperature
    if uncond_logits is not None:
        l = (1 + guidance_scale) * l - guidance_scale * (uncond_logits.double() / temperature)
    return l


def posterior(schedule, logits, x_t, t, t_prev, *, temperature=1.0, p_flip=True, uncond_logits=None,
              guidance_scale=0.0):
    """P(x_{t'} = 1) in float64 (phat at t' = 0); t, t_prev ints or int64 [B]."""
    s = torch.sigmoid(guided_logits(logits, temperature, uncond_logits, guidance_scale))
    x = (x_t != 0).double()
    phat = x * (1 - s) + (1 - x) * s if p_flip else s
    t, t_prev = torch.as_tensor(t), torch.as_tensor(t_prev)
    kp, bp = _per_sample(schedule.k[t_prev], s), _per_sample(schedule.b[t_prev], s)
    big_k = _per_sample(schedule.k[t] / schedule.k[t_prev], s)
    a1, a0 = kp * phat + bp, kp * (1 - phat) + bp
    q1, q0 = big_k * x + (1 - big_k) / 2, big_k * (1 - x) + (1 - big_k) / 2
    pi = a1 * q1 / (a1 * q1 + a0 * q0)
    return torch.where(_per_sample(t_prev, s) == 0, phat, pi)


def loss(schedule, logits, x_t, x0, t, *, p_flip=True, balance=True, gamma=0.0, weighting="mean", aux_weight=0.0,
         reduction="mean"):
    """The training loss of DESIGN §1.3 in float64, differentiable through autograd."""
    l = logits if logits.dtype == torch.float64 else logits.double()
    x, x0f = (x_t != 0).double(), (x0 != 0).double()
    y = (x - x0f).abs() if p_flip else x0f
    p = torch.sigmoid(l)
    el = torch.nn.functional.binary_cross_entropy_with_logits(l, y, reduction="none")
    if gamma:
        m = (1 - (p * y + (1 - p) * (1 - y))).clamp(1e-6, 1 - 1e-6)
        el = el * m**gamma
    if balance:
        w = _per_sample(y.reshape(y.shape[0], -1).mean(1), y)
        el = el * ((1 - w) * y + w * (1 - y))
    t = torch.as_tensor(t)
    tw = _per_sample(1 - (t - 1) / schedule.num_steps, l) if weighting == "weighted" else 1.0
    total = tw * el
    if aux_weight:
        xhat = x * (1 - p) + (1 - x) * p if p_flip else p
        keep = _per_sample(schedule.keep[t], l)
        kp, bp = _per_sample(schedule.k[t - 1], l), _per_sample(schedule.b[t - 1], l)

        def post(v):
            n0 = (kp * v + bp) * (keep * x + (1 - keep) / 2)
            n1 = (kp * (1 - v) + bp) * (keep * (1 - x) + (1 - keep) / 2)
            return n0 / (n0 + n1 + 1e-6)

        pred = torch.where(_per_sample(t, l) == 1, xhat, post(xhat)).clamp(1e-6, 1 - 1e-6)
        target = post(x0f).clamp(0, 1)
        aux = -(target * torch.log(pred) + (1 - target) * torch.log(1 - pred))
        total = total + aux_weight * tw * aux
    if reduction == "mean":
        return total.mean()
    if reduction == "sum":
        return total.sum()
    return total
