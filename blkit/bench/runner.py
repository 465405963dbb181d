"""``blkit bench``: every op (and the end-to-end cases) x every provider, side by side in one run."""
import datetime
import logging
import pathlib

import torch
from tqdm import tqdm

from .. import __version__
from . import cases as op_cases
from . import host, report
from .timing import copy_bandwidth_gbps, measure, measure_wall, peak_memory

AUTHORS_SIZE = (64, 256)  # B, N
SWEEP_NUMEL = (1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24)  # up to 16M elements, C = 64


def plan(device: str, quick: bool) -> list:
    """The op cases of this run: the authors' sizes, then (full runs) the sweep at C = 64."""
    batch, positions = AUTHORS_SIZE
    cases = []
    for channels in (64,) if quick else (32, 64, 128):
        cases += op_cases.op_cases(device, batch, positions, channels)
    if not quick:
        for numel in SWEEP_NUMEL:
            if numel == batch * positions * 64:
                continue  # measured above
            cases += op_cases.op_cases(device, max(1, numel // (positions * 64)), positions, 64, sample_steps=(64,))
    return cases


def run(output_dir, *, quick: bool = False, device=None, progress: bool = True, e2e: bool = True) -> dict:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch._logging.set_logs(dynamo=logging.ERROR)  # the reference's .item() graph break is expected
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    copy_gbps = copy_bandwidth_gbps(device)
    cases = plan(device, quick)
    if e2e:
        from . import e2e as e2e_cases

        cases += e2e_cases.cases(device, quick)
    records = []
    jobs = [(case, provider) for case in cases for provider in case.providers]
    for case, provider in tqdm(jobs, desc="blkit bench", unit="run", disable=not progress):
        fn = case.providers[provider]
        if case.samples:
            median, p20, p80 = measure_wall(fn, device, warmup=case.warmup, min_repeats=case.min_repeats)
        else:
            median, p20, p80 = measure(fn, device, graph=provider in case.graph_safe)
        records.append({
            "name": case.name, "provider": provider, "shape": list(case.shape), "dtype": case.dtype,
            "median_ms": median, "p20_ms": p20, "p80_ms": p80,
            "gbps": case.bytes_moved / (median * 1e-3) / 1e9 if case.bytes_moved else None,
            "peak_mem_bytes": peak_memory(device, fn),
            **({"samples_per_s": case.samples / (median * 1e-3)} if case.samples else {}),
        })
    result = {
        "device": host.device_name(device), "device_type": device, "blkit": __version__, "torch": torch.__version__,
        "triton": triton_version, "commit": host.commit(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "copy_bandwidth_gbps": copy_gbps, "quick": quick, "records": records,
    }
    report.write_all(result, output_dir)
    return result
