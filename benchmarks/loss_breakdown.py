"""Where the CPU backend's training-loss path goes, at the authors' size B=64, N=256, C=64 (1M elements).

    python benchmarks/loss_breakdown.py [--rounds 500]

Each part runs in its own block of calls (the allocator's state, and so the page faults, depends on what ran
just before), after a warm-up; prints the median time in ms and the minor page faults per call:
- q_sample (x_t and the residual written),
- diffusion_loss forward under no_grad (value only),
- diffusion_loss forward with its derivative (what a training forward computes),
- diffusion_loss forward and backward (the gradient reaching logits.grad),
- q_sample + diffusion_loss forward and backward (the benchmark group of bench_cpu_ops.py).
"""
import argparse
import resource
import statistics
import time

import torch

import blkit
from blkit import ops

B, N, C, T = 64, 256, 64, 64


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 2, (B, N, C), generator=gen, dtype=torch.uint8)
    logits = torch.randn(B, N, C, generator=gen).requires_grad_()
    t = torch.randint(1, T + 1, (B,), generator=gen)
    schedule = blkit.NoiseSchedule(T)
    x_t, _ = ops.q_sample(x0, t, schedule, 0, backend="cpu")

    def loss(noised):
        return ops.diffusion_loss(logits, noised, x0, t, schedule, backend="cpu")

    def forward_value():
        with torch.no_grad():
            loss(x_t)

    def forward_and_backward(noised):
        loss(noised).backward()
        logits.grad = None

    parts = {
        "q_sample": lambda: ops.q_sample(x0, t, schedule, 0, backend="cpu"),
        "diffusion_loss forward, no_grad": forward_value,
        "diffusion_loss forward with derivative": lambda: loss(x_t),
        "diffusion_loss forward + backward": lambda: forward_and_backward(x_t),
        "q_sample + diffusion_loss fwd+bwd": lambda: forward_and_backward(
            ops.q_sample(x0, t, schedule, 0, backend="cpu")[0]),
    }
    print(f"{'part (own block of calls each)':45s} {'median ms':>10s} {'faults/call':>12s}")
    for name, fn in parts.items():
        for _ in range(50):
            fn()
        times = []
        faults = _minor_faults()
        for _ in range(args.rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        faults = (_minor_faults() - faults) / args.rounds
        print(f"{name:45s} {statistics.median(times) * 1e3:10.3f} {faults:12.1f}")


if __name__ == "__main__":
    main()
