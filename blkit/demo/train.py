"""Training the demo model: a binary autoencoder, then a Bernoulli diffusion over its cached latents.

Both stages are reproducible from ``seed``: torch's generator is seeded at the start of each stage, the
autoencoder's stochastic bits and the diffusion's forward noising draw their Philox seeds from it, and the
batch order comes from a separate seeded generator. (Bit-for-bit equality also needs the same torch
version, device and number of threads.)
"""
import copy
import math
import tempfile
import time

import torch
import torch.nn.functional as F

from ..data import PackedLatentDataset
from .data import load_digit_images
from .model import (
    DEFAULT_AE_CONFIG,
    DEFAULT_DENOISER_CONFIG,
    DEFAULT_DIFFUSION_CONFIG,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_WEIGHTS,
    build_autoencoder,
    build_diffusion,
    save_demo,
)

__all__ = ["DEFAULT_AE_STEPS", "DEFAULT_DIFFUSION_STEPS", "train_autoencoder", "encode_latents", "train_diffusion",
           "train_demo"]

DEFAULT_AE_STEPS = 1500
DEFAULT_DIFFUSION_STEPS = 6000


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class _Batches:
    """Reshuffled epochs of indices from a seeded generator; yields index tensors of ``batch_size``."""

    def __init__(self, num_items: int, batch_size: int, seed: int):
        self.num_items, self.batch_size = num_items, min(batch_size, num_items)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.pos = torch.randperm(num_items, generator=self.generator), 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.num_items:
            self.order, self.pos = torch.randperm(self.num_items, generator=self.generator), 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


def _progress(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, dynamic_ncols=True)


def train_autoencoder(images: torch.Tensor, *, steps: int = DEFAULT_AE_STEPS, config=None, batch_size: int = 64,
                      lr: float = 2e-3, seed: int = 0, device="cpu", progress: bool = True, backend=None):
    """Train a BinaryAutoencoder on float images [M, 1, H, W] in [0, 1] with stochastic binary codes and a
    per-pixel BCE reconstruction loss (the decoder outputs logits). Returns (autoencoder in eval mode,
    history: {"loss": [per step], "recon_mse": deterministic-code MSE over the whole set})."""
    torch.manual_seed(seed)
    config = dict(DEFAULT_AE_CONFIG if config is None else config)
    config["img_size"] = images.shape[-1]
    ae = build_autoencoder(config, backend=backend).to(device).train()
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, max(1, steps // 20)))
    batches = _Batches(len(images), batch_size, seed + 1)
    images = images.to(device)
    losses = []
    with _progress(steps, "autoencoder", progress) as bar:
        for _ in range(steps):
            x = images[batches.next().to(device)]
            recon, _, _ = ae(x)  # stochastic bits: Philox seed drawn from torch's generator
            loss = F.binary_cross_entropy_with_logits(recon, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(bce=f"{losses[-1]:.4f}", refresh=False)
    ae.eval()
    with torch.no_grad():
        mse = sum(F.mse_loss(torch.sigmoid(ae.decode(ae.encode(chunk))), chunk, reduction="sum").item()
                  for chunk in images.split(256)) / images.numel()
    return ae, {"loss": losses, "recon_mse": mse}


def encode_latents(autoencoder, images: torch.Tensor, labels=None, *, progress: bool = True) -> torch.Tensor:
    """Deterministic codes (p > 0.5) of every image, cached bit-packed with :class:`blkit.data.PackedLatentDataset`
    in a temporary directory; returns uint8 [M, N, C] (N = h * w positions, row-major)."""
    device = next(autoencoder.parameters()).device
    source = torch.utils.data.TensorDataset(images.cpu(), *(() if labels is None else (labels.cpu(),)))
    with tempfile.TemporaryDirectory(prefix="blkit-demo-") as tmp:
        cache = PackedLatentDataset.build(autoencoder, source, f"{tmp}/latents", batch_size=256, deterministic=True,
                                          device=device, progress=progress)
        rows = [cache[i] for i in range(len(cache))]
    return torch.stack([r[0] if isinstance(r, tuple) else r for r in rows])


def train_diffusion(codes: torch.Tensor, latent_hw, *, steps: int = DEFAULT_DIFFUSION_STEPS, denoiser_config=None,
                    diffusion_config=None, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.01,
                    ema_decay: float = 0.999, seed: int = 0, device="cpu", progress: bool = True, backend=None):
    """Train a BernoulliDiffusion (BinaryTransformer denoiser) on uint8 codes [M, N, C] of an h x w grid.
    Returns (diffusion holding the EMA weights, in eval mode; history {"loss", "acc": [per step]})."""
    torch.manual_seed(seed)
    config = dict(DEFAULT_DIFFUSION_CONFIG if diffusion_config is None else diffusion_config)
    config["denoiser"] = dict(DEFAULT_DENOISER_CONFIG if denoiser_config is None else denoiser_config,
                              codebook_size=codes.shape[-1], latent_shape=tuple(latent_hw))
    diffusion = build_diffusion(config, backend=backend).to(device).train()
    ema = copy.deepcopy(diffusion.denoiser).eval().requires_grad_(False)
    decay_params = [p for n, p in diffusion.named_parameters() if p.dim() >= 2 and "pos_emb" not in n]
    other_params = [p for n, p in diffusion.named_parameters() if not (p.dim() >= 2 and "pos_emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay_params, "weight_decay": weight_decay},
                             {"params": other_params, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, max(1, steps // 20)))
    batches = _Batches(len(codes), batch_size, seed + 1)
    codes = codes.to(device)
    losses, accs = [], []
    with _progress(steps, "diffusion", progress) as bar:
        for step in range(steps):
            stats = diffusion.loss(codes[batches.next().to(device)])
            opt.zero_grad(set_to_none=True)
            stats["loss"].backward()
            torch.nn.utils.clip_grad_norm_(diffusion.parameters(), 1.0)
            opt.step()
            sched.step()
            decay = min(ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema.parameters(), diffusion.denoiser.parameters()):
                    e.lerp_(p, 1.0 - decay)
            losses.append(stats["loss"].item())
            accs.append(stats["acc"].item())
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}", acc=f"{accs[-1]:.3f}", refresh=False)
    diffusion.denoiser.load_state_dict(ema.state_dict())
    return diffusion.eval(), {"loss": losses, "acc": accs}


def _mean_tail(values, n=100):
    tail = values[-n:]
    return sum(tail) / max(1, len(tail))


def train_demo(out=DEFAULT_WEIGHTS, *, seed: int = 0, ae_steps: int = DEFAULT_AE_STEPS,
               diffusion_steps: int = DEFAULT_DIFFUSION_STEPS, image_size: int = DEFAULT_IMAGE_SIZE, ae_config=None,
               denoiser_config=None, diffusion_config=None, device="cpu", progress: bool = True, log=print) -> dict:
    """Train both stages on the digits and write the weights file ``out`` (None: do not write).
    Returns a summary: {"path", "autoencoder", "diffusion", "history": {...}, "seconds": {...}}."""
    start = time.perf_counter()
    images, labels = load_digit_images(image_size)
    log(f"digits: {len(images)} images, {image_size}x{image_size}; seed {seed}; device {device}; "
        f"{torch.get_num_threads()} threads")
    ae, ae_hist = train_autoencoder(images, steps=ae_steps, config=ae_config, seed=seed, device=device,
                                    progress=progress)
    t_ae = time.perf_counter() - start
    log(f"autoencoder: {ae_steps} steps in {t_ae:.0f} s, final BCE {_mean_tail(ae_hist['loss']):.4f}, "
        f"reconstruction MSE {ae_hist['recon_mse']:.5f}")
    codes = encode_latents(ae, images, labels, progress=progress)
    h = w = image_size // ae.downsample_factor
    diffusion, diff_hist = train_diffusion(codes, (h, w), steps=diffusion_steps, denoiser_config=denoiser_config,
                                           diffusion_config=diffusion_config, seed=seed + 1000, device=device,
                                           progress=progress)
    total = time.perf_counter() - start
    log(f"diffusion: {diffusion_steps} steps in {total - t_ae:.0f} s, final loss "
        f"{_mean_tail(diff_hist['loss']):.4f}, bit accuracy {_mean_tail(diff_hist['acc']):.4f}")
    training = dict(seed=seed, ae_steps=ae_steps, diffusion_steps=diffusion_steps, image_size=image_size,
                    ae_final_bce=_mean_tail(ae_hist["loss"]), ae_recon_mse=ae_hist["recon_mse"],
                    diffusion_final_loss=_mean_tail(diff_hist["loss"]),
                    diffusion_final_acc=_mean_tail(diff_hist["acc"]),
                    seconds_autoencoder=t_ae, seconds_total=total, torch_version=str(torch.__version__),
                    threads=torch.get_num_threads(), device=str(device))
    path = None
    if out is not None:
        path = save_demo(out, ae.cpu(), diffusion.cpu(), image_size, training)
        log(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {total:.0f} s total")
    return dict(path=path, autoencoder=ae, diffusion=diffusion, history=dict(autoencoder=ae_hist,
                diffusion=diff_hist), seconds=dict(autoencoder=t_ae, total=total), training=training)
