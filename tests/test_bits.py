"""Bit layout (DESIGN §3): pack/unpack against numpy.packbits(bitorder="little"), XOR and popcount, exact."""
import numpy as np
import pytest
import torch

from blkit import ops

ODD_CHANNELS = [1, 7, 8, 63, 64, 65, 130]


def _random_bits(shape, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, shape, generator=g)
    return bits.to(dtype)


def _numpy_pack(bits: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.packbits(bits.cpu().numpy() != 0, axis=-1, bitorder="little"))


@pytest.mark.parametrize("channels", ODD_CHANNELS)
@pytest.mark.parametrize("leading", [(1,), (3, 5), (2, 1, 4)])
def test_pack_matches_numpy(target, channels, leading):
    target.require("pack_bits")
    bits = _random_bits((*leading, channels), seed=channels)
    got = ops.pack_bits(bits.to(target.device), backend=target.backend).cpu()
    assert got.dtype == torch.uint8 and got.shape == (*leading, (channels + 7) // 8)
    assert torch.equal(got, _numpy_pack(bits))


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int64, torch.float32, torch.float16, torch.bfloat16])
def test_pack_accepts_dtypes_and_treats_nonzero_as_one(target, dtype):
    target.require("pack_bits")
    values = torch.tensor([[0, 1, 0, 3, 0, 0, 1, 1, 1, 0, 2]])
    if dtype.is_floating_point:
        values = values * 0.5  # 0.5, 1.0, 1.5: all nonzero
    bits = values.to(dtype)
    expected = _numpy_pack(values != 0)
    assert torch.equal(ops.pack_bits(bits.to(target.device), backend=target.backend).cpu(), expected)


def test_pack_non_contiguous(target):
    target.require("pack_bits")
    base = _random_bits((65, 6, 4), seed=3)
    view = base.transpose(0, 2)  # [4, 6, 65], non-contiguous
    got = ops.pack_bits(view.to(target.device), backend=target.backend).cpu()
    assert torch.equal(got, _numpy_pack(view.contiguous()))


def test_pack_empty(target):
    target.require("pack_bits")
    assert ops.pack_bits(torch.zeros(0, 16, dtype=torch.uint8, device=target.device),
                         backend=target.backend).shape == (0, 2)
    assert ops.pack_bits(torch.zeros(3, 0, dtype=torch.uint8, device=target.device),
                         backend=target.backend).shape == (3, 0)


@pytest.mark.parametrize("channels", ODD_CHANNELS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool, torch.float32])
def test_unpack_round_trip(target, channels, dtype):
    target.require("unpack_bits")
    bits = _random_bits((4, 3, channels), seed=channels + 1)
    packed = _numpy_pack(bits)
    got = ops.unpack_bits(packed.to(target.device), channels, dtype, backend=target.backend).cpu()
    assert got.dtype == dtype and got.shape == bits.shape
    assert torch.equal(got, bits.to(dtype))


def test_unpack_ignores_padding_bits(target):
    target.require("unpack_bits")
    packed = torch.tensor([[0xFF, 0xFF]], dtype=torch.uint8)  # 13 channels: bits 13..15 are padding
    got = ops.unpack_bits(packed.to(target.device), 13, backend=target.backend).cpu()
    assert torch.equal(got, torch.ones(1, 13, dtype=torch.uint8))


def test_unpack_non_contiguous(target):
    target.require("unpack_bits")
    packed = torch.randint(0, 256, (9, 5), dtype=torch.uint8)
    view = packed.t()[:, :]  # [5, 9] non-contiguous
    got = ops.unpack_bits(view.to(target.device), 72, backend=target.backend).cpu()
    ref = np.unpackbits(view.contiguous().numpy(), axis=-1, bitorder="little")
    assert torch.equal(got, torch.from_numpy(ref))


@pytest.mark.parametrize("channels", ODD_CHANNELS)
def test_xor_dense_and_packed_agree(target, channels):
    target.require("xor_bits")
    a = _random_bits((6, channels), seed=10)
    b = _random_bits((6, channels), seed=11)
    dense = ops.xor_bits(a.to(target.device), b.to(target.device), backend=target.backend).cpu()
    assert torch.equal(dense, a ^ b)
    packed = ops.xor_bits(_numpy_pack(a).to(target.device), _numpy_pack(b).to(target.device),
                          backend=target.backend).cpu()
    assert torch.equal(packed, _numpy_pack(a ^ b))


def test_xor_bool_and_float(target):
    target.require("xor_bits")
    a = _random_bits((5, 9), torch.bool, seed=1)
    b = _random_bits((5, 9), torch.bool, seed=2)
    assert torch.equal(ops.xor_bits(a.to(target.device), b.to(target.device), backend=target.backend).cpu(), a ^ b)
    fa, fb = a.float() * 2, b.float()  # nonzero counts as one
    got = ops.xor_bits(fa.to(target.device), fb.to(target.device), backend=target.backend).cpu()
    assert got.dtype == torch.uint8 and torch.equal(got, (a ^ b).to(torch.uint8))


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_popcount(target, dim):
    target.require("popcount")
    packed = torch.randint(0, 256, (4, 7, 9), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    bits = np.unpackbits(packed.numpy(), axis=-1, bitorder="little").reshape(4, 7, 9, 8)
    expected = torch.from_numpy(bits.sum(-1).astype(np.int64)).sum(dim)
    got = ops.popcount(packed.to(target.device), dim, backend=target.backend).cpu()
    assert got.dtype == torch.int64 and torch.equal(got, expected)


def test_popcount_of_packed_bits_counts_ones(target):
    target.require("popcount")
    bits = _random_bits((3, 130), seed=9)
    got = ops.popcount(_numpy_pack(bits).to(target.device), backend=target.backend).cpu()
    assert torch.equal(got, bits.sum(-1).to(torch.int64))
