"""CPU op benchmarks (pytest-benchmark), side by side in one run at the authors' size B=64, N=256, C=64.

    python -m pytest benchmarks/bench_cpu_ops.py --benchmark-only --benchmark-columns=median,iqr,rounds

Providers: blkit backends available on the CPU, the authors' program (blkit.reference), and numpy where it
has the same operation (packbits/unpackbits).
"""
import numpy as np
import pytest
import torch

import blkit
from blkit import _registry, ops
from blkit import reference as authors

B, N, C, T = 64, 256, 64, 64
GEN = torch.Generator().manual_seed(0)
BITS = torch.randint(0, 2, (B, N, C), generator=GEN, dtype=torch.uint8)
PACKED = ops.pack_bits(BITS, backend="reference")
LOGITS = torch.randn(B, N, C, generator=GEN)
SCHEDULE = blkit.NoiseSchedule(T)
CPU_BACKENDS = [name for name, info in _registry.all_backends().items() if info.available and "cpu" in info.devices]


def _backends_for(op):
    return [pytest.param(name, id=f"blkit-{name}") for name in CPU_BACKENDS if _registry.implements(op, name)]


@pytest.mark.benchmark(group="pack_bits")
@pytest.mark.parametrize("backend", _backends_for("pack_bits"))
def test_pack_bits(benchmark, backend):
    benchmark(ops.pack_bits, BITS, backend=backend)


@pytest.mark.benchmark(group="pack_bits")
def test_pack_bits_numpy(benchmark):
    array = BITS.numpy()
    benchmark(np.packbits, array, axis=-1, bitorder="little")


@pytest.mark.benchmark(group="unpack_bits")
@pytest.mark.parametrize("backend", _backends_for("unpack_bits"))
def test_unpack_bits(benchmark, backend):
    benchmark(ops.unpack_bits, PACKED, C, backend=backend)


@pytest.mark.benchmark(group="unpack_bits")
def test_unpack_bits_numpy(benchmark):
    array = PACKED.numpy()
    benchmark(np.unpackbits, array, axis=-1, bitorder="little")


@pytest.mark.benchmark(group="sample_step")
@pytest.mark.parametrize("backend", _backends_for("sample_step"))
def test_sample_step(benchmark, backend):
    benchmark(ops.sample_step, LOGITS, BITS, 64, 63, SCHEDULE, 0, backend=backend)


@pytest.mark.benchmark(group="sample_step")
def test_sample_step_authors(benchmark):
    sched, x = authors.Scheduler(T), BITS.float()
    benchmark(authors.sample_step, LOGITS, x, 64, 63, sched)
