"""The demo's data set: scikit-learn's bundled handwritten digits (no download).

``sklearn.datasets.load_digits`` holds 1,797 grey 8x8 images with values 0..16 and their labels 0..9.
They are normalised to [0, 1] and upscaled with bilinear interpolation to ``size`` x ``size``.
"""
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_digit_images", "upscale"]


def upscale(images_8x8, size: int) -> torch.Tensor:
    """float [M, 8, 8] (or [M, 1, 8, 8]) in [0, 1] -> float32 [M, 1, size, size] (bilinear, clamped to [0, 1])."""
    x = torch.as_tensor(np.asarray(images_8x8), dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0.0, 1.0)


def load_digit_images(size: int = 16):
    """(images float32 [1797, 1, size, size] in [0, 1], labels int64 [1797]).

    Needs scikit-learn (``pip install scikit-learn``); the data ship inside it.
    """
    if size % 8 or size < 8:
        raise ValueError(f"size must be a positive multiple of 8, got {size}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the demo data set comes from scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    return upscale(images, size), torch.as_tensor(digits.target, dtype=torch.int64)
