"""Sampling the demo model: images to a PNG grid or a .npy array, and a speed comparison with the authors'
sampler program (``blkit.reference.sample``) on the same trained denoiser."""
import math
import time
from pathlib import Path

import numpy as np
import torch

from .model import load_demo

__all__ = ["image_grid", "save_images", "sample_to_file", "compare_reference"]


def image_grid(images, ncols=None, scale: int = 4, pad: int = 1) -> np.ndarray:
    """float [N, H, W] in [0, 1] -> one float32 [rows * (H*scale + pad) + pad, ...] grid (nearest upscaling,
    padding at mid grey)."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        h, w = h * scale, w * scale
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), 0.5, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def save_images(images, path, *, scale: int = 4) -> Path:
    """``.npy``: float32 [N, H, W] in [0, 1]; ``.png``: a grid image (white digits on black)."""
    path = Path(path)
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise ValueError(f"output file must end in .png or .npy, got {path.name!r}")
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, images)
    else:
        from matplotlib import image as mpimg

        mpimg.imsave(path, image_grid(images, scale=scale), cmap="gray", vmin=0.0, vmax=1.0)
    return path


def sample_to_file(out, *, num: int = 64, seed: int = 0, steps=None, temperature: float = 1.0, device="cpu",
                   weights=None, backend=None, progress: bool = True, log=print) -> np.ndarray:
    """Load the demo weights, draw ``num`` images from ``seed`` and write them to ``out`` (.png or .npy).
    Returns the images, float32 [num, H, W] in [0, 1]."""
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if Path(out).suffix.lower() not in (".png", ".npy"):
        raise ValueError(f"output file must end in .png or .npy, got {str(out)!r}")
    model = load_demo(weights, device=device, backend=backend)
    start = time.perf_counter()
    images = model.sample(num, seed=seed, steps=steps, temperature=temperature, progress=progress)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    images = images.cpu().numpy()
    path = save_images(images, out)
    steps_used = steps or model.diffusion.num_steps
    log(f"{num} samples ({images.shape[1]}x{images.shape[2]}, {steps_used} steps, temperature {temperature}, "
        f"seed {seed}) in {seconds:.2f} s on {device} -> {path}")
    return images


def _timed(fn, device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def compare_reference(*, num: int = 64, seed: int = 0, steps=None, temperature: float = 1.0, device="cpu",
                      weights=None, backend=None, log=print) -> dict:
    """Sample ``num`` latents with blkit's sampler and with the authors' program (``blkit.reference.sample``:
    float32 schedule buffers, ``torch.bernoulli``, per-step ``.item()``) using the same trained denoiser in
    float32; both decoded by the same autoencoder. Each runs once untimed (warm-up) and once timed.
    Returns {"blkit": samples/s, "reference": samples/s, "images": {...}}."""
    from .. import reference as authors

    model = load_demo(weights, device=device, backend=backend)
    diffusion = model.diffusion
    n_pos, n_bits = diffusion.latent_shape
    steps = steps or diffusion.num_steps
    scheduler = authors.Scheduler(diffusion.num_steps, diffusion.schedule.kind).to(device)

    def run_blkit():
        return diffusion.sample(num, sample_steps=steps, temperature=temperature, seed=seed, progress=False)

    def run_reference():
        torch.manual_seed(seed)
        return authors.sample(diffusion.denoiser, scheduler, num, n_pos, n_bits, sample_steps=steps, temp=temperature,
                              p_flip=diffusion.p_flip, device=device)

    results = {}
    for name, fn in (("blkit", run_blkit), ("reference", run_reference)):
        fn()  # warm-up (lazy initialisation, CUDA-graph capture, autotuning)
        latents, seconds = _timed(fn, device)
        images = model.decode(latents.to(torch.uint8)).cpu().numpy()
        results[name] = num / seconds
        results.setdefault("images", {})[name] = images
        log(f"  {name + ' sampler':<18} {num / seconds:10.1f} samples/s  ({seconds:.3f} s for {num} samples, "
            f"{steps} steps, {n_pos} x {n_bits} bits)")
    log(f"  speed-up of blkit over the reference: {results['blkit'] / results['reference']:.2f}x")
    return results
