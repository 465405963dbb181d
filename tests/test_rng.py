"""The shared random stream (DESIGN §2): Philox known answers, Triton's tl.rand golden vectors, and
bit-identical draws of every random op on every backend."""
import json
import pathlib

import pytest
import torch

from blkit import ops
from blkit._backends.reference import philox
from blkit._backends.reference.ops import uniforms

GOLDEN = json.loads((pathlib.Path(__file__).parent / "golden" / "tl_rand.json").read_text())
KNOWN_ANSWERS = [  # Philox4x32-10 (Salmon et al. 2011), counter words, key words -> output words
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
]


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _rng(seed, offset):
    return torch.tensor([_signed(seed), _signed(offset)], dtype=torch.int64)


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_known_answers_reference(counter, key, expected):
    words = [torch.tensor([c], dtype=torch.int64) for c in counter]
    out = philox.philox4x32_10(*words, *key)
    assert tuple(int(w) for w in out) == expected


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_known_answers_native(counter, key, expected):
    native = pytest.importorskip("blkit._native", reason="native module not built")
    assert tuple(native.philox4x32_10(counter, key)) == expected


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"seed{c['seed']}-off{c['offset']}")
def test_reference_uniforms_match_recorded_tl_rand(case):
    u = uniforms(_rng(case["seed"], case["offset"]), (len(case["bits"]),))
    assert u.view(torch.int32).tolist() == case["bits"]


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda c: f"seed{c['seed']}-off{c['offset']}")
def test_native_uniforms_match_recorded_tl_rand(case):
    native = pytest.importorskip("blkit._native", reason="native module not built")
    out = torch.empty(len(case["bits"]), dtype=torch.float32)
    native.uniform(out.data_ptr(), out.numel(), case["seed"], case["offset"])
    assert out.view(torch.int32).tolist() == case["bits"]


def test_live_triton_matches_recorded_tl_rand():
    """Guards the pinned Triton range: the installed Triton must still produce the recorded stream."""
    from blkit._registry import backend_info

    if not backend_info("triton").available:
        pytest.skip(backend_info("triton").reason)
    from blkit.kernels.random import uniform_kernel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for case in GOLDEN["cases"]:
        out = torch.empty(len(case["bits"]), dtype=torch.float32, device=device)
        uniform_kernel[(1,)](out, case["seed"], case["offset"], out.numel(), BLOCK=out.numel())
        assert out.cpu().view(torch.int32).tolist() == case["bits"], case


def test_uniform_range_endpoints():
    """uniform(w) maps words 0 / 0xFFFFFFFF to 0 and 0x7FFFFFFF / 0x80000000 to 0.99999994 (not 1)."""
    words = torch.tensor([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000], dtype=torch.int64)
    u = philox.uniform_from_word(words)
    assert u.tolist() == [0.0, 0.0, 0.9999999403953552, 0.9999999403953552]


@pytest.mark.parametrize("seed,offset", [(0, 0), (7, 2**32 - 5), (2**64 - 1, 3), (12345, 2**63 + 17)])
def test_bernoulli_follows_stream(target, seed, offset):
    target.require("bernoulli")
    probs = torch.rand(3, 37, generator=torch.Generator().manual_seed(1))
    expected = (uniforms(_rng(seed, offset), probs.shape) < probs).to(torch.uint8)
    got = ops.bernoulli(probs.to(target.device), seed, offset, backend=target.backend).cpu()
    assert torch.equal(got, expected)


def test_offset_shifts_the_stream(target):
    """Element i at offset k is element i + k at offset 0: ops can split one stream without overlap."""
    target.require("bernoulli")
    probs = torch.full((1000,), 0.5, device=target.device)
    whole = ops.bernoulli(probs, 99, 0, backend=target.backend)
    tail = ops.bernoulli(probs[:900], 99, 100, backend=target.backend)
    assert torch.equal(whole[100:], tail)


def test_seed_as_device_tensor(target):
    """Seed and offset may live in (device) tensors, the CUDA-graph-safe form; same bits as ints."""
    target.require("bernoulli")
    probs = torch.rand(513, device=target.device)
    seed = torch.tensor(2**40 + 3, dtype=torch.int64, device=target.device)
    offset = torch.tensor([77], dtype=torch.int64, device=target.device)
    a = ops.bernoulli(probs, seed, offset, backend=target.backend)
    b = ops.bernoulli(probs, 2**40 + 3, 77, backend=target.backend)
    assert torch.equal(a, b)
