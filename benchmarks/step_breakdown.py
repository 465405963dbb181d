"""Where one sampling step of the CPU backend goes, at the authors' size B=64, N=256, C=64 (1M elements).

    python benchmarks/step_breakdown.py [--rounds 300]

Times the native entry points directly (no Python layer) and the public op, interleaved round by round so that
a noisy machine affects every row alike, with 1 and 2 threads; prints medians in ms:
- Philox uniforms alone (``_native.uniform``: 1M float32 written),
- the last step t = 1 -> 0 (no random numbers: read logits and bits, exp, decide, write),
- the step t = 64 -> 63 (the same plus one Philox draw per element), bare kernel,
- the same step through ``blkit.ops.sample_step`` (validation, dispatch, output allocation).
"""
import argparse
import statistics
import time

import torch

import blkit
from blkit import _native, ops

B, N, C, T = 64, 256, 64, 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (B, N, C), generator=gen, dtype=torch.uint8)
    logits = torch.randn(B, N, C, generator=gen)
    schedule = blkit.NoiseSchedule(T)
    n = bits.numel()
    uniforms = torch.empty(n)
    out = torch.empty(B, N, C, dtype=torch.uint8)
    # p_flip coefficient rows (a, b0, c, d, final) of some step t' >= 1, and of the last step (final = 1)
    sampled = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0]])
    last = torch.tensor([[0.1, 0.2, 0.3, 0.4, 1.0]])

    def native_step(coef):
        # positional arguments as in blkit/_backends/cpu/ops.py::_step (float32 logits, dense uint8 state)
        _native.sample_step(logits.data_ptr(), 6, bits.data_ptr(), 0, False, coef.data_ptr(), 1, B, B * N, C, 1.0,
                            True, 0, 6, 0.0, 0, 0, 0, 0, out.data_ptr(), 0, 0)

    parts = {
        "Philox uniforms alone (_native.uniform)": lambda: _native.uniform(uniforms.data_ptr(), n, 0, 0),
        "last step t = 1 -> 0 (no random numbers)": lambda: native_step(last),
        "step t = 64 -> 63, bare kernel": lambda: native_step(sampled),
        "step t = 64 -> 63, blkit.ops.sample_step": lambda: ops.sample_step(logits, bits, 64, 63, schedule, 0,
                                                                              backend="cpu"),
    }
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        _native.cpu_set_num_threads(threads)
        times = {name: [] for name in parts}
        for name, fn in parts.items():  # warm-up
            for _ in range(10):
                fn()
        for _ in range(args.rounds):
            for name, fn in parts.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        results[threads] = {name: statistics.median(v) * 1e3 for name, v in times.items()}
    title = f"part (medians of {args.rounds} interleaved rounds, ms)"
    print(f"{title:50s} {'1 thread':>10s} {'2 threads':>10s}")
    for name in parts:
        print(f"{name:50s} {results[1][name]:10.3f} {results[2][name]:10.3f}")


if __name__ == "__main__":
    main()
