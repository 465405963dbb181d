"""Noise schedules of the Bernoulli diffusion (DESIGN §1.1), tables in float64."""
import math

import numpy as np
import torch

SCHEDULE_KINDS = ("linear", "cos", "sigmoid")


def _k_table(num_steps: int, kind: str) -> np.ndarray:
    """k[t] = prod_{s<=t} keep[s] for t = 0..T (float64)."""
    t = np.arange(num_steps + 1, dtype=np.float64)
    if kind == "linear":
        return 1.0 - t / num_steps
    if kind == "cos":
        return 0.5 + 0.5 * np.cos(math.pi * t / num_steps)

    def g(v):
        return 1.0 / (1.0 + np.exp(-v / 0.8))

    return np.clip((g(3.0) - g(3.0 * t / num_steps)) / (g(3.0) - g(0.0)), 0.0, 1.0)


class NoiseSchedule:
    """The forward process q(x_t | x_0) = Bernoulli(k[t] * x_0 + b[t]) with T steps.

    Attributes (float64 tensors of length T + 1, index 0 is the identity):
      keep[t]  fraction kept by step t (the authors' ``beta``)
      k[t]     prod_{s<=t} keep[s]
      b[t]     (1 - k[t]) / 2
    """

    def __init__(self, num_steps: int, kind: str = "linear"):
        if isinstance(num_steps, bool) or not isinstance(num_steps, int):
            raise TypeError(f"num_steps must be an int, got {type(num_steps).__name__}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}")
        self.num_steps = num_steps
        self.kind = kind
        k = _k_table(num_steps, kind)
        k[0] = 1.0
        if kind == "linear":
            keep = np.ones(num_steps + 1)
            steps = np.arange(1, num_steps + 1, dtype=np.float64)
            keep[1:] = 1.0 - 1.0 / (num_steps - steps + 1.0)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = np.concatenate([[1.0], k[1:] / k[:-1]])
            keep = np.nan_to_num(keep, nan=0.0)  # 0/0 only once k has reached 0
        self.k = torch.from_numpy(k)
        self.b = torch.from_numpy((1.0 - k) / 2.0)
        self.keep = torch.from_numpy(keep)
        self._step_tables = {}

    def __repr__(self):
        return f"NoiseSchedule(num_steps={self.num_steps}, kind={self.kind!r})"

    def __eq__(self, other):
        return isinstance(other, NoiseSchedule) and (self.num_steps, self.kind) == (other.num_steps, other.kind)

    def __hash__(self):
        return hash((self.num_steps, self.kind))

    def sampling_steps(self, num_sample_steps: int) -> list:
        """The reverse grid of DESIGN §1.1: S steps out of T, descending, always ending at 1."""
        if isinstance(num_sample_steps, bool) or not isinstance(num_sample_steps, int):
            raise TypeError(f"num_sample_steps must be an int, got {type(num_sample_steps).__name__}")
        if not 1 <= num_sample_steps <= self.num_steps:
            raise ValueError(f"num_sample_steps must be in [1, {self.num_steps}], got {num_sample_steps}")
        steps = list(range(1, self.num_steps + 1))
        if num_sample_steps != self.num_steps:
            picks = np.linspace(0.0, 1.0, num_sample_steps) * (self.num_steps - 1)
            steps = [steps[int(u)] for u in picks]
        return steps[::-1]

    def device_tables(self, device) -> dict:
        """float64 (k, b, keep) on ``device``, cached: indexed by per-sample steps without a host sync."""
        device = torch.device(device)
        if device not in self._step_tables:
            self._step_tables[device] = tuple(v.to(device) for v in (self.k, self.b, self.keep))
        return self._step_tables[device]
