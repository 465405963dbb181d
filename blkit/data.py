"""Cached binary latents: encode an image data set once, train the diffusion from bit-packed codes.

The authors' online training runs the autoencoder's encoder on every batch. ``PackedLatentDataset.build``
runs it once and stores each image's code as bits packed along the channel axis (``blkit.ops.pack_bits``,
channel c in byte c // 8, bit c % 8) in a numpy memmap: N * ceil(C / 8) bytes per image, e.g. 2 KiB for
16x16 positions x 64 bits, against 64 KiB as float32 (32x smaller; 8x smaller than uint8 0/1 codes).
Items are read lazily from the memmap, so the data set costs no RAM and works with DataLoader workers.

Layout of a cache directory: ``codes.u8`` (uint8 [M, N, ceil(C/8)]), ``labels.npy`` (int64 [M], when the
source yields (image, label) pairs) and ``meta.json``. A build writes into ``<dir>.partial`` and renames it
when complete, so an interrupted build is never mistaken for a cache.
"""
import json
import os
import shutil

import numpy as np
import torch

from . import ops

__all__ = ["PackedLatentDataset"]

_FORMAT = "blkit.PackedLatentDataset/1"


class PackedLatentDataset(torch.utils.data.Dataset):
    """Bit-packed latents on disk. ``ds[i]`` is uint8 [N, C] bits (or packed uint8 [N, ceil(C/8)] with
    ``unpack=False``, to unpack on the GPU with ``blkit.ops.unpack_bits``), paired with its label when the
    cache has labels."""

    def __init__(self, path, *, unpack: bool = True):
        self.path = os.fspath(path)
        meta_path = os.path.join(self.path, "meta.json")
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{self.path!r} is not a PackedLatentDataset cache (no meta.json); "
                                    "create one with PackedLatentDataset.build")
        with open(meta_path) as f:
            self.meta = json.load(f)
        if self.meta.get("format") != _FORMAT:
            raise ValueError(f"{meta_path} has format {self.meta.get('format')!r}, expected {_FORMAT!r}")
        self.unpack = unpack
        self.num_items = self.meta["num_items"]
        self.num_positions, self.num_bits = self.meta["num_positions"], self.meta["num_bits"]
        self.latent_hw = tuple(self.meta["latent_hw"])
        self.has_labels = self.meta["has_labels"]
        self._codes = None  # opened lazily (per DataLoader worker; a memmap must not be pickled)
        self._labels = None

    @property
    def packed_width(self) -> int:
        return (self.num_bits + 7) // 8

    @property
    def nbytes(self) -> int:
        """Bytes of codes on disk."""
        return self.num_items * self.num_positions * self.packed_width

    @property
    def float32_nbytes(self) -> int:
        """What the same codes would take as float32 0/1 values (how the authors hold them)."""
        return self.num_items * self.num_positions * self.num_bits * 4

    def _open(self):
        if self._codes is None:
            shape = (self.num_items, self.num_positions, self.packed_width)
            self._codes = np.memmap(os.path.join(self.path, "codes.u8"), dtype=np.uint8, mode="r", shape=shape)
            if self.has_labels:
                self._labels = np.load(os.path.join(self.path, "labels.npy"), mmap_mode="r")
        return self._codes

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_codes"] = state["_labels"] = None
        return state

    def __len__(self):
        return self.num_items

    def __getitem__(self, index):
        if not -self.num_items <= index < self.num_items:
            raise IndexError(f"index {index} out of range for {self.num_items} items")
        row = np.array(self._open()[index])
        if self.unpack:
            row = np.unpackbits(row, axis=-1, count=self.num_bits, bitorder="little")
        item = torch.from_numpy(row)
        if self.has_labels:
            return item, int(self._labels[index])
        return item

    @classmethod
    def build(cls, autoencoder, images, path, *, batch_size: int = 64, deterministic: bool = True, seed: int = 0,
              device=None, num_workers: int = 0, overwrite: bool = False, progress: bool = True,
              unpack: bool = True) -> "PackedLatentDataset":
        """Encode ``images`` (a Dataset of image tensors [3, H, W], or of (image, label) pairs) with
        ``autoencoder`` (a :class:`blkit.nn.BinaryAutoencoder`) and store the packed codes under ``path``.

        deterministic=True stores (p > 0.5); otherwise one Bernoulli draw per image from the Philox stream
        (``seed``; image i uses offsets from i * C * h * w, so the result does not depend on batch_size).
        An existing complete cache is reused unless ``overwrite``.
        """
        from tqdm.auto import tqdm

        path = os.fspath(path)
        if os.path.isfile(os.path.join(path, "meta.json")) and not overwrite:
            return cls(path, unpack=unpack)
        if device is None:
            device = next(autoencoder.parameters()).device
        partial = path.rstrip("/\\") + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        total, codes, labels, meta = len(images), None, None, None
        start = 0
        was_training = autoencoder.training
        autoencoder.eval()
        try:
            with torch.no_grad():
                for batch in tqdm(loader, disable=not progress, desc="encoding latents"):
                    label = None
                    if isinstance(batch, (list, tuple)):
                        batch, label = batch[0], (batch[1] if len(batch) > 1 else None)
                    bits = autoencoder.encode(batch.to(device), deterministic=deterministic, seed=seed,
                                              offset=start * _per_item(autoencoder, batch))
                    b, c, h, w = bits.shape
                    packed = ops.pack_bits(bits.flatten(2).transpose(1, 2)).cpu().numpy()
                    if codes is None:
                        meta = dict(format=_FORMAT, num_items=total, num_positions=h * w, num_bits=c,
                                    latent_hw=[h, w], has_labels=label is not None, deterministic=deterministic,
                                    seed=seed, bitorder="little")
                        codes = np.memmap(os.path.join(partial, "codes.u8"), dtype=np.uint8, mode="w+",
                                          shape=(total, h * w, (c + 7) // 8))
                        labels = np.zeros(total, dtype=np.int64) if label is not None else None
                    codes[start:start + b] = packed
                    if labels is not None:
                        labels[start:start + b] = torch.as_tensor(label).cpu().numpy()
                    start += b
        finally:
            autoencoder.train(was_training)
        if codes is None:
            raise ValueError("images is empty: nothing to encode")
        codes.flush()
        del codes
        if labels is not None:
            np.save(os.path.join(partial, "labels.npy"), labels)
        with open(os.path.join(partial, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(partial, path)
        return cls(path, unpack=unpack)


def _per_item(autoencoder, batch) -> int:
    """Elements of one image's code: C * h * w (the Philox offset stride between images)."""
    h = batch.shape[-2] // autoencoder.downsample_factor
    w = batch.shape[-1] // autoencoder.downsample_factor
    return autoencoder.codebook_size * h * w
