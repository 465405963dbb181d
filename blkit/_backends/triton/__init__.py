"""The "triton" backend: Triton kernels of blkit.kernels, for CUDA tensors (CPU tensors under TRITON_INTERPRET=1)."""
import os

from ..._registry import BackendInfo, declare_backend

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"

try:
    import triton  # noqa: F401
except ImportError as exc:
    declare_backend(BackendInfo("triton", devices=(), available=False, reason=f"triton is not installed ({exc})",
                                how_to_enable="pip install 'triton>=3.2,<4'"))
else:
    import torch

    devices = (("cuda",) if torch.cuda.is_available() else ()) + (("cpu",) if _INTERPRET else ())
    if devices:
        reason = f"triton {triton.__version__}" + (" (interpreter on CPU tensors)" if _INTERPRET else "")
    else:
        reason = f"triton {triton.__version__} is installed but there is no CUDA device (set TRITON_INTERPRET=1 " \
                 "before importing blkit to run its kernels on CPU tensors through the interpreter)"
    try:
        from . import ops  # noqa: F401
    except ImportError as exc:  # e.g. blkit.kernels missing from a partial install
        devices, reason = (), f"blkit.kernels could not be imported ({exc})"
    declare_backend(BackendInfo("triton", devices=devices, available=bool(devices), reason=reason,
                                how_to_enable="a CUDA GPU, or TRITON_INTERPRET=1 for CPU tensors"))
