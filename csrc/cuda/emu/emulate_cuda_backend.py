"""Pytest plugin: run blkit's test suite against the CUDA kernels compiled for the CPU emulation (emu.h).

    PYTHONPATH=csrc/cuda/emu python -m pytest -p emulate_cuda_backend tests/ -k cuda

Builds blkit_cuda_emu (build.py; BLKIT_EMU_BUILD_DIR, default build/cuda-emu; BLKIT_EMU_SANITIZE=1 for
ASan/UBSan, then run Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0),
then declares the "cuda" backend available for CPU tensors with blkit/_backends/cuda/ops.py calling the emulated
module. The conformance suite (parametrized over available backends) then includes the target cpu-cuda.
Only for machines without a GPU: the emulation checks the kernels' logic, not their behaviour on a GPU.
"""
import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def load_emulated_module():
    sys.path.insert(0, str(HERE))
    try:
        import build as emu_build
    finally:
        sys.path.pop(0)
    build_dir = Path(os.environ.get("BLKIT_EMU_BUILD_DIR", ROOT / "build" / "cuda-emu"))
    path = emu_build.build(build_dir, sanitize=os.environ.get("BLKIT_EMU_SANITIZE") == "1")
    spec = importlib.util.spec_from_file_location("blkit_cuda_emu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install(module):
    """Make backend="cuda" run the emulated kernels on CPU tensors (process-wide)."""
    import importlib

    from blkit import _registry

    ops = importlib.import_module("blkit._backends.cuda.ops")  # registers the implementations
    ops._native = module
    ops._stream = lambda device: 0
    ops._launch_context = lambda device: __import__("contextlib").nullcontext()
    _registry.declare_backend(_registry.BackendInfo(
        "cuda", devices=("cpu",), available=True, reason="CUDA kernels in the CPU emulation (csrc/cuda/emu)",
        how_to_enable="PYTHONPATH=csrc/cuda/emu python -m pytest -p emulate_cuda_backend"))


# At import (pytest -p imports the plugin before the test conftest computes its backend targets).
MODULE = load_emulated_module()
install(MODULE)
