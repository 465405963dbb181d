"""The "cuda" backend: hand-written CUDA kernels from csrc/cuda, built into blkit._native with BLKIT_WITH_CUDA.

Available when torch sees a CUDA device and blkit._native was built with the CUDA kernels; otherwise it
reports itself unavailable with the reason (and how to build it), and its ops are not imported.
"""
import importlib

import torch

from ..._registry import BackendInfo, declare_backend

_HOW = "on a machine with a CUDA build of torch and nvcc: BLKIT_WITH_CUDA=ON pip install --no-build-isolation ."


def _status() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "no CUDA device is available (torch.cuda.is_available() is False)"
    try:
        native = importlib.import_module("blkit._native")
    except ImportError as exc:
        return False, f"blkit._native is not built ({exc})"
    info = native.build_info()
    if not info["cuda"]:
        return False, "blkit._native was built without CUDA kernels"
    if not hasattr(native, "cuda_sample_step"):
        return False, "blkit._native is older than this blkit (no CUDA sample_step); rebuild it"
    archs = info.get("cuda_architectures") or "?"
    return True, f"blkit._native CUDA kernels (built for CUDA architectures {archs})"


_available, _reason = _status()
declare_backend(BackendInfo("cuda", devices=("cuda",), available=_available, reason=_reason, how_to_enable=_HOW))

if _available:
    from . import ops  # noqa: F401
