"""Per-step scalars computed once per call from the float64 schedule tables (DESIGN §1.4).

Kernels never see the schedule: they get small float32 tables ``coef[R, K]``, R = 1 when one step
applies to every element, R = batch for per-sample steps (row r covers sample r).
"""
import torch

# Columns of the step table (sample_step and posterior).
#   p_flip:      a, b0, c, d   with flip probability f(s) = (a*s + b0) / (c*s + d)
#   not p_flip:  k', b', qh, ql  with pi = A1*Q1 / (A1*Q1 + A0*Q0)
#   column 4:    1.0 where t' = 0 (last step: threshold phat > 0.5)
STEP_COLUMNS = 5
# Columns of the loss table: time weight, k[t-1], b[t-1], keep[t], 1.0 where t = 1.
LOSS_COLUMNS = 5


def _as_index(t, device) -> torch.Tensor:
    """int or int64 tensor -> int64 tensor [R] on the schedule's (CPU) or the data's device."""
    if isinstance(t, torch.Tensor):
        return t.reshape(-1).to(device)
    return torch.tensor([t], dtype=torch.int64, device=device)


def _tables(schedule, t, t2=None):
    """float64 (k, b, keep) tables on the device where the indices live (CPU for Python ints)."""
    ref = next((v for v in (t, t2) if isinstance(v, torch.Tensor)), None)
    device = ref.device if ref is not None else torch.device("cpu")
    k, b, keep = schedule.device_tables(device)
    # Indices are validated in eager mode; the clamp keeps graph-captured calls in bounds regardless.
    idx = _as_index(t, device).clamp(0, schedule.num_steps)
    idx2 = None if t2 is None else _as_index(t2, device).clamp(0, schedule.num_steps)
    return k, b, keep, idx, idx2


_CACHE: dict = {}
_CACHE_LIMIT = 1 << 14


def _cached(build, schedule, device, *args):
    """Tables for Python-int steps are built once per device and reused: a sampler's step loop then makes no
    host-to-device copies. Tensor steps (per sample) are computed on their device every call."""
    if any(isinstance(a, torch.Tensor) for a in args) or torch.compiler.is_compiling():
        return build(schedule, *args, device)
    key = (build.__name__, schedule.num_steps, schedule.kind, device, *args)
    table = _CACHE.get(key)
    if table is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        table = _CACHE[key] = build(schedule, *args, "cpu").to(device)
    return table


def step_coefficients(schedule, t, t_prev, p_flip: bool, device) -> torch.Tensor:
    """float32 [R, 5] table for a reverse step t -> t_prev (see STEP_COLUMNS)."""
    return _cached(_step_table, schedule, device, t, t_prev, p_flip)


def q_sample_coefficients(schedule, t, device) -> torch.Tensor:
    """float32 [R, 2]: Bernoulli probability of x_t = 1 given x_0 = 0 and given x_0 = 1."""
    return _cached(_q_sample_table, schedule, device, t)


def loss_coefficients(schedule, t, weighting: str, device) -> torch.Tensor:
    """float32 [R, 5] table for the training loss at step t (see LOSS_COLUMNS)."""
    return _cached(_loss_table, schedule, device, t, weighting)


def _step_table(schedule, t, t_prev, p_flip, device):
    k, b, _, ti, tp = _tables(schedule, t, t_prev)
    ti, tp = torch.broadcast_tensors(ti, tp)
    kp, bp = k[tp], b[tp]
    big_k = k[ti] / k[tp].clamp_min(1e-300)  # prod of keep over t'+1..t; k[t'] > 0 for t' < T
    qh, ql = (1 + big_k) / 2, (1 - big_k) / 2
    final = (tp == 0).to(torch.float64)
    if p_flip:
        cols = (kp * ql, bp * ql, kp * (ql - qh), bp + kp * qh, final)
    else:
        cols = (kp, bp, qh, ql, final)
    return torch.stack(cols, dim=1).to(device=device, dtype=torch.float32)


def _q_sample_table(schedule, t, device):
    k, b, _, ti, _ = _tables(schedule, t)
    return torch.stack((b[ti], k[ti] + b[ti]), dim=1).to(device=device, dtype=torch.float32)


def _loss_table(schedule, t, weighting, device):
    k, b, keep, ti, _ = _tables(schedule, t)
    ti = ti.clamp_min(1)
    if weighting == "weighted":
        weight = 1.0 - (ti - 1).to(torch.float64) / schedule.num_steps
    else:
        weight = torch.ones_like(ti, dtype=torch.float64)
    first = (ti == 1).to(torch.float64)
    cols = (weight, k[ti - 1], b[ti - 1], keep[ti], first)
    return torch.stack(cols, dim=1).to(device=device, dtype=torch.float32)
