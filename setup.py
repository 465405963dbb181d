"""Build script for blkit: pure-Python packages plus the CMake-built extension blkit._native.

Environment variables:
  BLKIT_WITH_CUDA           OFF | ON | AUTO (default AUTO: CUDA kernels iff torch has CUDA and nvcc is found)
  CMAKE_CUDA_ARCHITECTURES  e.g. "80;90a" (CMake default in CMakeLists.txt: "80;90a")
  CMAKE_ARGS                extra arguments for the CMake configure step (shell-split)
  BLKIT_CMAKE_BUILD_TYPE    overrides the Release build type (e.g. RelWithDebInfo)
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def read_version() -> str:
    text = (ROOT / "blkit" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("cannot find __version__ in blkit/_version.py")
    return match.group(1)


def torch_has_cuda() -> bool:
    """True if torch imports in this interpreter and is a CUDA build (no GPU needed)."""
    try:
        import torch  # noqa: PLC0415
    except Exception:  # torch missing or broken: build the CPU-only module
        return False
    return getattr(torch.version, "cuda", None) is not None


def python_tag() -> str:
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
    return f"{impl}{sys.version_info.major}{sys.version_info.minor}"


def find_cmake() -> str:
    exe = shutil.which("cmake")
    if exe:
        return exe
    try:
        import cmake  # noqa: PLC0415  (the "cmake" pip package)

        return str(Path(cmake.CMAKE_BIN_DIR) / "cmake")
    except ImportError:
        raise RuntimeError("CMake >= 3.24 is required to build blkit._native (pip install cmake)") from None


def find_ninja() -> str | None:
    exe = shutil.which("ninja")
    if exe:
        return exe
    try:
        import ninja  # noqa: PLC0415  (the "ninja" pip package)

        candidate = Path(ninja.BIN_DIR) / ("ninja.exe" if os.name == "nt" else "ninja")
        return str(candidate) if candidate.exists() else None
    except ImportError:
        return None


class CMakeExtension(Extension):
    """An extension built by CMakeLists.txt at the project root (no sources for setuptools)."""

    def __init__(self, name: str, source_dir: Path = ROOT):
        super().__init__(name, sources=[])
        self.source_dir = Path(source_dir).resolve()


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        if not isinstance(ext, CMakeExtension):
            return super().build_extension(ext)

        import pybind11  # noqa: PLC0415  (build requirement)

        ext_path = Path(self.get_ext_fullpath(ext.name)).resolve()
        out_dir = ext_path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        # Kept between builds so that rebuilds are incremental.
        build_dir = ext.source_dir / "build" / f"cmake-{python_tag()}"
        build_dir.mkdir(parents=True, exist_ok=True)

        cmake = find_cmake()
        build_type = os.environ.get("BLKIT_CMAKE_BUILD_TYPE", "Release")
        args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DBLKIT_WITH_CUDA={os.environ.get('BLKIT_WITH_CUDA', 'AUTO')}",
            f"-DBLKIT_TORCH_HAS_CUDA={'ON' if torch_has_cuda() else 'OFF'}",
            f"-DCMAKE_BUILD_TYPE={build_type}",
            "-DBLKIT_BUILD_TESTS=OFF",
        ]
        cuda_archs = os.environ.get("CMAKE_CUDA_ARCHITECTURES")
        if cuda_archs:
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_archs}")
        else:
            # Forget a value cached by an earlier build so CMakeLists.txt's default applies.
            args.append("-UCMAKE_CUDA_ARCHITECTURES")
        if not (build_dir / "CMakeCache.txt").exists():
            # The generator is fixed when the build tree is created.
            ninja = find_ninja()
            if ninja is None:
                raise RuntimeError("ninja is required to build blkit._native (pip install ninja)")
            args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        args += shlex.split(os.environ.get("CMAKE_ARGS", ""))

        subprocess.run([cmake, "-S", str(ext.source_dir), "-B", str(build_dir), *args], check=True)
        jobs = str(os.cpu_count() or 1)
        subprocess.run([cmake, "--build", str(build_dir), "--target", "_native", "-j", jobs], check=True)

        if not ext_path.exists():
            raise RuntimeError(f"CMake did not produce {ext_path}")


def kernel_packages():
    """The top-level directory `kernels` is installed as blkit.kernels (with its subpackages)."""
    subpackages = find_packages(where=str(ROOT / "kernels"))
    packages = ["blkit.kernels"] + [f"blkit.kernels.{name}" for name in subpackages]
    package_dir = {"blkit.kernels": "kernels"}
    package_dir.update({f"blkit.kernels.{name}": "kernels/" + name.replace(".", "/") for name in subpackages})
    return packages, package_dir


_kernel_packages, _kernel_package_dir = kernel_packages()

setup(
    name="blkit",
    version=read_version(),
    packages=find_packages(include=["blkit", "blkit.*"], exclude=["blkit.kernels", "blkit.kernels.*"])
    + _kernel_packages,
    package_dir=_kernel_package_dir,
    package_data={"blkit": ["py.typed", "demo/*.pt"]},
    ext_modules=[CMakeExtension("blkit._native")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.10",
    install_requires=["numpy", "tqdm"],
    entry_points={"console_scripts": ["blkit = blkit.cli:main"]},
    zip_safe=False,
)
