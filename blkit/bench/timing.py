"""Timing primitives: median and p20/p80 of repeated calls, and the device-copy bandwidth.

CPU: wall clock (time.perf_counter) around each call after warm-up. CUDA: triton.testing.do_bench (CUDA
events, L2 flushed between calls, warm-up excluded), or a CUDA graph of the call when ``graph=True``.
"""
import statistics
import time

import torch


def _quantiles(samples_ms):
    ordered = sorted(samples_ms)

    def q(p):
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

    return statistics.median(ordered), q(0.2), q(0.8)


def measure_cpu(fn, *, warmup: int = 2, min_repeats: int = 5, max_repeats: int = 50, budget_s: float = 1.5):
    """(median_ms, p20_ms, p80_ms) of ``fn()`` on the CPU within about ``budget_s`` seconds."""
    for _ in range(warmup):
        fn()
    samples = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < min_repeats or (len(samples) < max_repeats and time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return _quantiles(samples)


def measure_cuda(fn, *, graph: bool = False, rep_ms: int = 200):
    """(median_ms, p20_ms, p80_ms) of ``fn()`` on the current CUDA device."""
    import triton.testing

    if graph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            fn()
        run = cuda_graph.replay
    else:
        run = fn
    median, p20, p80 = triton.testing.do_bench(run, rep=rep_ms, quantiles=[0.5, 0.2, 0.8])
    return median, p20, p80


def measure_wall(fn, device: str, *, warmup: int = 1, min_repeats: int = 3):
    """Wall-clock quantiles of a long call (seconds, e.g. a whole sampling run), synchronising the device."""

    def synced():
        fn()
        if device == "cuda":
            torch.cuda.synchronize()

    return measure_cpu(synced, warmup=warmup, min_repeats=min_repeats, max_repeats=min_repeats)


def measure(fn, device: str, **kwargs):
    if device == "cuda":
        return measure_cuda(fn, **{k: v for k, v in kwargs.items() if k in ("graph", "rep_ms")})
    return measure_cpu(fn, **{k: v for k, v in kwargs.items() if k not in ("graph", "rep_ms")})


def copy_bandwidth_gbps(device: str, num_bytes: int = 256 << 20) -> float:
    """Device-to-device (or RAM-to-RAM) copy bandwidth: 2 * bytes / time of dst.copy_(src)."""
    src = torch.empty(num_bytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    median_ms, _, _ = measure(lambda: dst.copy_(src), device)
    return 2 * num_bytes / (median_ms * 1e-3) / 1e9


def peak_memory(device: str, fn):
    """Peak bytes allocated by one call of ``fn`` on CUDA (None on the CPU, where torch does not track it)."""
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before
