"""The ``blkit`` command.

    blkit            versions, backends per device, and one sampling step through every backend and the
                     authors' reference program, with timings
    blkit info       versions and backends only
    blkit bench      the benchmark suite: every op x provider (and end-to-end), results.json/.md and plots
"""
import argparse
import platform
import statistics
import sys
import time

import torch

import blkit
from blkit import _registry, ops
from blkit import reference as authors


def _versions() -> list:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return [f"blkit {blkit.__version__}, torch {torch.__version__}, triton {triton_version}, "
            f"python {platform.python_version()}", f"CUDA device: {cuda}"]


def print_info() -> None:
    for line in _versions():
        print(line)
    for device, entries in blkit.backends().items():
        print(f"\n{device} backends:")
        for name, entry in entries.items():
            mark = "yes" if entry["available"] else "no "
            print(f"  {name:<10} {mark}  {entry['reason']}")
            if entry["default_for"]:
                print(f"  {'':<10}      default for: {', '.join(entry['default_for'])}")


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def run_step_demo(batch=16, positions=256, channels=64, steps=64, repeats=9) -> None:
    """One reverse step t = T -> T - 5 at the authors' layout, through every backend that has sample_step."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    schedule = blkit.NoiseSchedule(steps)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, positions, channels, generator=g).to(device)
    x_t = torch.randint(0, 2, logits.shape, generator=g, dtype=torch.uint8).to(device)
    t, t_prev = steps, steps - 5
    print(f"\nsample_step on {device}: B={batch} N={positions} C={channels}, t={t} -> {t_prev} "
          f"(median of {repeats})")
    sched = authors.Scheduler(steps).to(device)
    x_float = x_t.float()
    ref_ms = _median_ms(lambda: authors.sample_step(logits, x_float, t, t_prev, sched), repeats)
    print(f"  {'authors (blkit.reference)':<28} {ref_ms:9.3f} ms")
    for name, info in _registry.all_backends().items():
        if not (info.available and device in info.devices):
            print(f"  {'blkit backend=' + name:<28}   unavailable: {info.reason}")
        elif not _registry.implements("sample_step", name):
            print(f"  {'blkit backend=' + name:<28}   no sample_step kernel yet")
        else:
            ms = _median_ms(lambda n=name: ops.sample_step(logits, x_t, t, t_prev, schedule, 0, backend=n), repeats)
            ones = ops.sample_step(logits, x_t, t, t_prev, schedule, 0, backend=name).float().mean().item()
            print(f"  {'blkit backend=' + name:<28} {ms:9.3f} ms   {ref_ms / ms:6.1f}x   (fraction of ones {ones:.4f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="blkit", description="Fused kernels for Binary Latent Diffusion.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, devices and backends (and why others are unavailable)")
    bench = sub.add_parser("bench", help="benchmark every op and the end-to-end cases against the reference")
    bench.add_argument("--quick", action="store_true", help="the authors' size only (minutes on a CPU)")
    bench.add_argument("--output", default="bench-results", help="output directory (default: bench-results)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    bench.add_argument("--no-e2e", action="store_true", help="skip the end-to-end sampling and training cases")
    args = parser.parse_args(argv)
    if args.command == "bench":
        from .bench import run

        result = run(args.output, quick=args.quick, device=args.device, e2e=not args.no_e2e)
        print(f"{len(result['records'])} measurements on {result['device']} -> {args.output}/"
              "{results.json, results.md, speedup.png, bandwidth.png}")
        return 0
    print_info()
    if args.command is None:
        run_step_demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
