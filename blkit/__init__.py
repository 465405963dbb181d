"""blkit: fused kernels for Binary Latent Diffusion (Bernoulli diffusion over binary latents).

    import blkit
    from blkit import ops
    schedule = blkit.NoiseSchedule(64, "linear")
"""
from . import (
    _backends,  # noqa: F401  (registers every backend's kernels)
    ops,
)
from ._info import backends
from ._version import __version__
from .schedule import NoiseSchedule

__all__ = ["__version__", "NoiseSchedule", "backends", "ops"]
