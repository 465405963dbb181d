"""blkit.data.PackedLatentDataset: encode once into bit-packed codes on disk, train from them."""
import json
import os

import numpy as np
import pytest
import torch

from blkit import ops
from blkit.data import PackedLatentDataset
from blkit.nn import BernoulliDiffusion, BinaryAutoencoder, BinaryTransformer, bits_to_tokens

C = 16  # bits per position; 16x16 images -> 8x8 latents


@pytest.fixture(scope="module")
def autoencoder():
    torch.manual_seed(0)
    return BinaryAutoencoder(nf=32, ch_mult=(1, 2), res_blocks=1, attn_resolutions=(8,), img_size=16, emb_dim=32,
                             codebook_size=C).eval()


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(1)
    return torch.utils.data.TensorDataset(torch.randn(10, 3, 16, 16, generator=gen), torch.arange(10) % 3)


def test_build_stores_packed_codes_equal_to_encode(tmp_path, autoencoder, images):
    ds = PackedLatentDataset.build(autoencoder, images, tmp_path / "cache", batch_size=4, progress=False)
    assert len(ds) == 10 and ds.has_labels and ds.latent_hw == (8, 8)
    with torch.no_grad():
        expected = bits_to_tokens(autoencoder.encode(images.tensors[0]))
    for i in range(10):
        x, label = ds[i]
        assert x.dtype == torch.uint8 and x.shape == (64, C)
        assert torch.equal(x, expected[i]) and label == i % 3
    # on disk: N * C / 8 bytes per image, 32x less than float32 codes
    size = os.path.getsize(tmp_path / "cache" / "codes.u8")
    assert size == ds.nbytes == 10 * 64 * C // 8
    assert ds.float32_nbytes == 32 * size
    assert not (tmp_path / "cache.partial").exists()
    assert json.loads((tmp_path / "cache" / "meta.json").read_text())["num_bits"] == C


def test_packed_items_unpack_on_device_with_ops(tmp_path, autoencoder, images):
    PackedLatentDataset.build(autoencoder, images, tmp_path / "c", progress=False)
    packed = PackedLatentDataset(tmp_path / "c", unpack=False)
    dense = PackedLatentDataset(tmp_path / "c")
    p, label = packed[3]
    assert p.shape == (64, C // 8)
    assert torch.equal(ops.unpack_bits(p, C), dense[3][0]) and label == dense[3][1]
    assert np.array_equal(np.packbits(dense[3][0].numpy(), axis=-1, bitorder="little"), p.numpy())


def test_stochastic_codes_do_not_depend_on_batch_size(tmp_path, autoencoder, images):
    a = PackedLatentDataset.build(autoencoder, images, tmp_path / "a", batch_size=3, deterministic=False, seed=5,
                                  progress=False)
    b = PackedLatentDataset.build(autoencoder, images, tmp_path / "b", batch_size=4, deterministic=False, seed=5,
                                  progress=False)
    det = PackedLatentDataset.build(autoencoder, images, tmp_path / "d", progress=False)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(10))
    assert any(not torch.equal(a[i][0], det[i][0]) for i in range(10))


def test_existing_cache_reused_unless_overwrite(tmp_path, autoencoder, images):
    PackedLatentDataset.build(autoencoder, images[:4][0], tmp_path / "c", progress=False)  # unlabelled, 4 images
    again = PackedLatentDataset.build(autoencoder, images, tmp_path / "c", progress=False)
    assert len(again) == 4 and not again.has_labels
    fresh = PackedLatentDataset.build(autoencoder, images, tmp_path / "c", overwrite=True, progress=False)
    assert len(fresh) == 10 and fresh.has_labels


def test_missing_cache_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="PackedLatentDataset.build"):
        PackedLatentDataset(tmp_path / "nothing")


def test_training_steps_from_the_cache(tmp_path, autoencoder, images):
    ds = PackedLatentDataset.build(autoencoder, images, tmp_path / "c", progress=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=1)  # memmap opened per worker
    torch.manual_seed(0)
    model = BernoulliDiffusion(BinaryTransformer(codebook_size=C, latent_shape=(8, 8), dim=32, depth=1, num_heads=4,
                                                 num_steps=8, num_classes=3), num_steps=8)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    for x0, label in loader:
        stats = model.loss(x0, label)
        optim.zero_grad()
        stats["loss"].backward()
        optim.step()
    assert torch.isfinite(stats["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
