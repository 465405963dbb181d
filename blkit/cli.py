"""The ``blkit`` command.

    blkit            versions, backends per device, and one sampling step through every backend and the
                     authors' reference program, with timings
    blkit info       versions and backends only
    blkit bench      the benchmark suite: every op x provider (and end-to-end), results.json/.md and plots
    blkit train-demo train the embedded demo model (binary autoencoder + Bernoulli diffusion on the digits)
    blkit sample     draw images from the demo model (PNG grid or .npy array)
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 1 << 63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _add_demo_commands(sub) -> None:
    from .demo.model import DEFAULT_WEIGHTS
    from .demo.train import DEFAULT_AE_STEPS, DEFAULT_DIFFUSION_STEPS

    train = sub.add_parser("train-demo", help="train the demo model on scikit-learn's digits and write its weights")
    train.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    train.add_argument("--out", default=str(DEFAULT_WEIGHTS), help="weights file (default: the one blkit ships)")
    train.add_argument("--ae-steps", type=_positive_int, default=DEFAULT_AE_STEPS,
                       help=f"autoencoder training steps (default: {DEFAULT_AE_STEPS})")
    train.add_argument("--diffusion-steps", type=_positive_int, default=DEFAULT_DIFFUSION_STEPS,
                       help=f"diffusion training steps (default: {DEFAULT_DIFFUSION_STEPS})")
    train.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="CPU threads (default: torch's choice); bit-for-bit reproduction needs the same number")
    sample = sub.add_parser("sample", help="generate digits with the demo model")
    sample.add_argument("--num", type=_positive_int, default=64, help="number of images (default: 64)")
    sample.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    sample.add_argument("--out", default="samples.png", help=".png (grid) or .npy (float [N, H, W] in [0, 1])")
    sample.add_argument("--steps", type=_positive_int, default=None, help="sampling steps (default: all T)")
    sample.add_argument("--temperature", type=_positive_float, default=1.0, help="sampling temperature (default: 1)")
    sample.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    sample.add_argument("--weights", default=None, help="weights file (default: the one blkit ships)")
    sample.add_argument("--compare-reference", action="store_true",
                        help="also run the authors' sampler on the same model and print samples/s of both")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="blkit", description="Fused kernels for Binary Latent Diffusion.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, devices and backends (and why others are unavailable)")
    bench = sub.add_parser("bench", help="benchmark every op and the end-to-end cases against the reference")
    bench.add_argument("--quick", action="store_true", help="the authors' size only (minutes on a CPU)")
    bench.add_argument("--output", default="bench-results", help="output directory (default: bench-results)")
    bench.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    bench.add_argument("--no-e2e", action="store_true", help="skip the end-to-end sampling and training cases")
    _add_demo_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "train-demo":
        from .demo import train_demo

        if args.threads is not None:
            torch.set_num_threads(args.threads)
        train_demo(args.out, seed=args.seed, ae_steps=args.ae_steps, diffusion_steps=args.diffusion_steps,
                   device=args.device)
        return 0
    if args.command == "sample":
        from .demo import compare_reference, sample_to_file

        if not args.out.lower().endswith((".png", ".npy")):
            parser.error(f"--out must end in .png or .npy, got {args.out!r}")

        options = dict(num=args.num, seed=args.seed, steps=args.steps, temperature=args.temperature,
                       device=args.device, weights=args.weights)
        sample_to_file(args.out, **options)
        if args.compare_reference:
            print("sampler speed, same denoiser (float32):")
            compare_reference(**options)
        return 0
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
