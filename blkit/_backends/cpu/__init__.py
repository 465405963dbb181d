"""The "cpu" backend: torch-free C++ kernels from csrc/ through the pybind11 module blkit._native."""
import importlib

from ..._registry import BackendInfo, declare_backend

_HOW = "build the native module: pip install --no-build-isolation -e . (needs cmake, ninja, pybind11, a C++17 compiler)"

try:
    importlib.import_module("blkit._native")
except ImportError as exc:  # the package still works through the reference backend
    declare_backend(BackendInfo("cpu", devices=("cpu",), available=False,
                                reason=f"blkit._native is not built ({exc})", how_to_enable=_HOW))
else:
    declare_backend(BackendInfo("cpu", devices=("cpu",), available=True, reason="blkit._native C++ kernels",
                                how_to_enable=_HOW))
    from . import ops  # noqa: F401
