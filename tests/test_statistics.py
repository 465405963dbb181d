"""Statistical tests of every sampler: >= 1e6 draws, several p, z-scores and chi-square, neighbour correlation.

Thresholds: |z| < 5 (false-alarm rate ~6e-7 per check) so the suite is stable, yet a bias of 1e-3 at 1e6 draws
(z ~ 2 per 1e-3 / sqrt(p(1-p)/n)) or a wrong probability table fails at once.
"""
import math

import pytest
import torch

import blkit
from blkit import ops
from blkit import reference as authors
from blkit._backends.reference.ops import uniforms

pytestmark = pytest.mark.statistical
N = 1 << 20  # 1,048,576 draws


def _z_binomial(successes: float, n: int, p: float) -> float:
    return (successes - n * p) / math.sqrt(n * p * (1 - p))


def _neighbour_correlation(z: torch.Tensor) -> float:
    a, b = z[:-1].double(), z[1:].double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std()))


def test_uniforms_chi_square():
    u = uniforms(torch.tensor([2024, 0]), (N,))
    assert 0 <= float(u.min()) and float(u.max()) < 1
    counts = torch.histc(u, bins=256, min=0, max=1)
    expected = N / 256
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with 255 d.o.f.: mean 255, sd ~22.6; 400 is > 6 sd out
    assert chi2 < 400, chi2


@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.9])
def test_bernoulli_rate_and_independence(target, p):
    target.require("bernoulli")
    z = ops.bernoulli(torch.full((N,), p, device=target.device), 31337, backend=target.backend).cpu()
    assert abs(_z_binomial(float(z.sum()), N, p)) < 5
    assert abs(_neighbour_correlation(z)) < 5 / math.sqrt(N)


def test_bernoulli_packed_rate(target):
    target.require("bernoulli")
    z = ops.bernoulli(torch.full((N // 64, 64), 0.25, device=target.device), 4, packed=True, backend=target.backend)
    ones = float(ops.popcount(z.cpu(), backend="reference").sum())
    assert abs(_z_binomial(ones, N, 0.25)) < 5


@pytest.mark.parametrize("t", [1, 10, 40, 64])
def test_q_sample_flip_rate(target, t):
    """P(x_t != x_0) = b[t] whatever x_0 is."""
    target.require("q_sample")
    schedule = blkit.NoiseSchedule(64, "cos")
    x0 = (torch.arange(N) % 3 == 0).to(torch.uint8).reshape(64, -1)
    _, residual = ops.q_sample(x0.to(target.device), t, schedule, 9, backend=target.backend)
    b = float(schedule.b[t])
    assert abs(_z_binomial(float(residual.sum()), N, b)) < 5
    assert abs(_neighbour_correlation(residual.cpu().reshape(-1))) < 5 / math.sqrt(N)


def test_q_sample_matches_authors_distribution(target):
    """Same rate of ones as the authors' torch.bernoulli q_sample, per x_0 value, at several t."""
    target.require("q_sample")
    schedule, sched = blkit.NoiseSchedule(64), authors.Scheduler(64)
    x0 = torch.randint(0, 2, (64, N // 64), generator=torch.Generator().manual_seed(0))
    t = torch.arange(64) + 1
    ours, _ = ops.q_sample(x0.to(target.device), t.to(target.device), schedule, 1, backend=target.backend)
    theirs = authors.q_sample(sched, x0.float(), t)
    for value in (0, 1):
        sel = x0 == value
        n = int(sel.sum())
        p = float(sched(x0.float(), t)[sel].mean())  # average probability over the selected draws
        assert abs(_z_binomial(float(ours.cpu()[sel].sum()), n, p)) < 5
        assert abs(_z_binomial(float(theirs[sel].sum()), n, p)) < 5


@pytest.mark.parametrize("t,tp", [(64, 59), (20, 19), (3, 1)])
def test_sample_step_rate_matches_posterior(target, t, tp):
    """sum of x_{t'} = 1 over 1M bits ~ sum of pi (Poisson-binomial), and neighbours are uncorrelated."""
    target.require("sample_step")
    schedule = blkit.NoiseSchedule(64)
    g = torch.Generator().manual_seed(t)
    logits = torch.randn(16, 256, 256, generator=g)
    x_t = torch.randint(0, 2, logits.shape, generator=g, dtype=torch.uint8)
    pi = ops.posterior(logits, x_t, t, tp, schedule, backend="reference").double()
    out = ops.sample_step(logits.to(target.device), x_t.to(target.device), t, tp, schedule, 8,
                          backend=target.backend).cpu()
    z = (float(out.sum()) - float(pi.sum())) / math.sqrt(float((pi * (1 - pi)).sum()))
    assert abs(z) < 5
    residual = out.double() - pi  # independent given pi
    r = residual.reshape(-1)
    corr = float((r[:-1] * r[1:]).mean() / (r.var()))
    assert abs(corr) < 5 / math.sqrt(r.numel())


@pytest.mark.parametrize("p", [0.05, 0.5, 0.8])
def test_binary_quantize_rate(target, p):
    target.require("binary_quantize")
    z = ops.binary_quantize(torch.full((N,), p, device=target.device), 3, backend=target.backend).cpu()
    assert abs(_z_binomial(float(z.sum()), N, p)) < 5
