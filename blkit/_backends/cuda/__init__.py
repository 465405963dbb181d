"""The "cuda" backend: hand-written CUDA kernels from csrc/cuda, built into blkit._native with BLKIT_WITH_CUDA.

The kernels are compiled (and compile-checked in CI for sm_80 and sm_90a) but no op is registered on them
yet, so the backend reports itself unavailable with the reason.
"""
import importlib

import torch

from ..._registry import BackendInfo, declare_backend

_HOW = "on a machine with a CUDA build of torch and nvcc: BLKIT_WITH_CUDA=ON pip install --no-build-isolation ."


def _reason() -> str:
    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    try:
        native = importlib.import_module("blkit._native")
    except ImportError as exc:
        return f"blkit._native is not built ({exc})"
    if not native.build_info()["cuda"]:
        return "blkit._native was built without CUDA kernels"
    return "the CUDA kernels are built but no op is registered on them yet"


declare_backend(BackendInfo("cuda", devices=("cuda",), available=False, reason=_reason(), how_to_enable=_HOW))
