"""The demo model (binary autoencoder + Bernoulli diffusion) and its weights file.

The weights file is a ``torch.save`` dict (loadable with ``weights_only=True``)::

    {"format": "blkit.demo/1",
     "image_size": 16,
     "autoencoder": {"config": BinaryAutoencoder kwargs, "state_dict": {name: float16 tensor}},
     "diffusion": {"config": {"denoiser": BinaryTransformer kwargs, "num_steps", "schedule", "p_flip",
                              "balance"}, "state_dict": {name: float16 tensor}},
     "training": {seed, steps, losses, wall times, ...}}

Weights are stored as float16 to keep the shipped file small and are loaded as float32.
"""
import os
from pathlib import Path

import torch
from torch import nn

from ..nn import BernoulliDiffusion, BinaryAutoencoder, BinaryTransformer

__all__ = ["DEFAULT_WEIGHTS", "DEFAULT_AE_CONFIG", "DEFAULT_DENOISER_CONFIG", "DEFAULT_DIFFUSION_CONFIG",
           "DemoModel", "build_autoencoder", "build_diffusion", "load_demo", "save_demo"]

FORMAT = "blkit.demo/1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "digits.pt"

DEFAULT_IMAGE_SIZE = 16
# 16x16 grey images -> 4x4 positions x 16 bits (two stride-2 downsamplings).
DEFAULT_AE_CONFIG = dict(in_channels=1, nf=32, ch_mult=(1, 2, 2), res_blocks=1, attn_resolutions=(), img_size=16,
                         emb_dim=64, codebook_size=16, norm_first=True, gen_mul=1.0)
DEFAULT_DENOISER_CONFIG = dict(dim=128, depth=4, num_heads=4, mlp_dim=512)
DEFAULT_DIFFUSION_CONFIG = dict(num_steps=64, schedule="linear", p_flip=True, balance=True)


def build_autoencoder(config: dict, backend=None) -> BinaryAutoencoder:
    return BinaryAutoencoder(**config, backend=backend)


def build_diffusion(config: dict, backend=None) -> BernoulliDiffusion:
    """``config``: {"denoiser": BinaryTransformer kwargs (codebook_size, latent_shape, ...), "num_steps",
    "schedule", "p_flip", "balance"}."""
    denoiser = BinaryTransformer(**dict(config["denoiser"], num_steps=config["num_steps"]))
    return BernoulliDiffusion(denoiser, config["num_steps"], config["schedule"], p_flip=config["p_flip"],
                              balance=config["balance"], backend=backend)


def diffusion_config(diffusion: BernoulliDiffusion) -> dict:
    denoiser = diffusion.denoiser.config()
    denoiser.pop("num_steps")
    denoiser["latent_shape"] = tuple(denoiser["latent_shape"])
    return dict(denoiser=denoiser, num_steps=diffusion.num_steps, schedule=diffusion.schedule.kind,
                p_flip=diffusion.p_flip, balance=diffusion.balance)


class DemoModel(nn.Module):
    """Binary autoencoder + Bernoulli diffusion over its 2-D latent grid; images are sigmoid(decoder output)."""

    def __init__(self, autoencoder: BinaryAutoencoder, diffusion: BernoulliDiffusion, image_size: int):
        super().__init__()
        self.autoencoder, self.diffusion, self.image_size = autoencoder, diffusion, int(image_size)

    @property
    def latent_hw(self) -> tuple:
        return tuple(self.diffusion.denoiser.latent_shape)

    @property
    def backend(self):
        return self.diffusion.backend

    @backend.setter
    def backend(self, value):
        self.diffusion.backend = value
        self.autoencoder.backend = value

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """uint8 latents [B, N, C] -> float32 images [B, H, W] in [0, 1]."""
        h, w = self.latent_hw
        from ..nn.autoencoder import tokens_to_bits

        logits = self.autoencoder.decode(tokens_to_bits(tokens, h, w))
        return torch.sigmoid(logits.float())[:, 0]

    @torch.no_grad()
    def sample_latents(self, num: int, *, seed: int = 0, steps=None, temperature: float = 1.0,
                       progress: bool = False, batch_size=None) -> torch.Tensor:
        """uint8 [num, N, C]; drawn in chunks of ``batch_size`` (default: all at once). A chunk's seed is
        ``seed + index of its first sample``, so chunking changes the samples only when batch_size does."""
        batch_size = batch_size or num
        chunks = []
        for start in range(0, num, batch_size):
            b = min(batch_size, num - start)
            chunks.append(self.diffusion.sample(b, sample_steps=steps, temperature=temperature, seed=seed + start,
                                                progress=progress))
        return torch.cat(chunks)

    @torch.no_grad()
    def sample(self, num: int, *, seed: int = 0, steps=None, temperature: float = 1.0, progress: bool = False,
               batch_size=None) -> torch.Tensor:
        """float32 images [num, H, W] in [0, 1] (on the model's device); reproducible from ``seed``."""
        latents = self.sample_latents(num, seed=seed, steps=steps, temperature=temperature, progress=progress,
                                      batch_size=batch_size)
        return self.decode(latents)


def _half_state(module: nn.Module) -> dict:
    return {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
            for k, v in module.state_dict().items()}


def save_demo(path, autoencoder: BinaryAutoencoder, diffusion: BernoulliDiffusion, image_size: int,
              training=None) -> Path:
    """Write the weights file (atomically: a partial file is never left under ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ae_config = autoencoder.config()
    for key in ("ch_mult", "attn_resolutions"):
        ae_config[key] = tuple(ae_config[key])
    payload = dict(format=FORMAT, image_size=int(image_size),
                   autoencoder=dict(config=ae_config, state_dict=_half_state(autoencoder)),
                   diffusion=dict(config=diffusion_config(diffusion), state_dict=_half_state(diffusion.denoiser)),
                   training=training or {})
    tmp = path.with_name(path.name + ".partial")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_demo(path=None, *, device="cpu", backend=None) -> DemoModel:
    """Load the demo model (default: the weights shipped inside blkit) as float32, in eval mode."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"no demo weights at {path}; create them with `blkit train-demo --out {path}`")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a blkit demo weights file (expected format {FORMAT!r})")
    autoencoder = build_autoencoder(payload["autoencoder"]["config"], backend=backend)
    autoencoder.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in payload["autoencoder"]["state_dict"].items()})
    diffusion = build_diffusion(payload["diffusion"]["config"], backend=backend)
    diffusion.denoiser.load_state_dict({k: v.float() if v.is_floating_point() else v
                                        for k, v in payload["diffusion"]["state_dict"].items()})
    model = DemoModel(autoencoder, diffusion, payload["image_size"]).to(device).eval()
    model.training_info = payload.get("training", {})
    return model
