"""The released sizes, once: the authors' full key lists (24 layers x 768, C = 64, N = 256, T = 64; the
BAE_C64 autoencoder) with random weights load through from_official and run a forward pass."""
import math

import pytest
import torch

from blkit import reference as authors
from blkit.nn import BernoulliDiffusion, BinaryAutoencoder

from .test_nn_official_format import read_keys

pytestmark = pytest.mark.slow


def _full_state_dict(name):
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for key, shape in read_keys(name):
        if key.startswith("scheduler."):
            continue
        t = torch.randn(shape, generator=gen)
        sd[key] = t / math.sqrt(math.prod(shape[1:])) if len(shape) >= 2 and key.endswith("weight") else 0.02 * t
    return sd


def test_full_size_denoiser_loads_and_runs():
    sd = _full_state_dict("official_sampler_keys.txt")
    sched = authors.Scheduler(64)
    for name in ("k_final", "b_final", "beta", "cumbeta"):
        sd[f"scheduler.{name}"] = getattr(sched, name)
    model = BernoulliDiffusion.from_official(sd)
    cfg = model.denoiser.config()
    assert (cfg["depth"], cfg["dim"], cfg["num_heads"], cfg["codebook_size"], cfg["latent_shape"]) == \
        (24, 768, 12, 64, (16, 16))
    assert model.num_steps == 64 and model.schedule.kind == "linear"
    x = torch.randint(0, 2, (1, 256, 64), dtype=torch.uint8)
    with torch.no_grad():
        logits = model.denoiser(x, time_steps=torch.tensor([63]))
    assert logits.shape == (1, 256, 64) and torch.isfinite(logits).all()
    out = model.sample(1, sample_steps=2, seed=0, progress=False)
    assert out.shape == (1, 256, 64) and out.dtype == torch.uint8


def test_full_size_autoencoder_loads_and_runs():
    ae = BinaryAutoencoder.from_official(_full_state_dict("official_autoencoder_keys.txt"))
    assert ae.config() == BinaryAutoencoder().config()  # the defaults are the released BAE_C64
    with torch.no_grad():
        bits = ae.encode(torch.randn(1, 3, 64, 64))  # the architecture does not depend on the input size
        assert bits.shape == (1, 64, 4, 4) and bits.dtype == torch.uint8
        assert ae.decode(bits).shape == (1, 3, 64, 64)
