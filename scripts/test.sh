#!/usr/bin/env bash
# Quick start, tests: set up .venv, build blkit, then run the C++ tests (ctest), the CUDA compile check
# (every .cu file for sm_80 and sm_90a, when nvcc is present) and the Python test suite (pytest).
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$ROOT"
PYBIND11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')"
JOBS="$(python -c 'import os; print(os.cpu_count())')"

mkdir -p build
echo "[blkit] C++ unit tests (ctest)"
cmake -S . -B build/ctest -G Ninja -Dpybind11_DIR="$PYBIND11_DIR" -DPython_EXECUTABLE="$(command -v python)" \
  -DBLKIT_WITH_CUDA=OFF > build/ctest.log 2>&1 || { cat build/ctest.log; exit 1; }
cmake --build build/ctest -j "$JOBS" >> build/ctest.log 2>&1 || { cat build/ctest.log; exit 1; }
ctest --test-dir build/ctest --output-on-failure

if command -v nvcc > /dev/null 2>&1; then
  echo "[blkit] CUDA compile check: BLKIT_WITH_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=80;90a"
  cmake -S . -B build/cuda-check -G Ninja -Dpybind11_DIR="$PYBIND11_DIR" -DPython_EXECUTABLE="$(command -v python)" \
    -DBLKIT_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90a" -DBLKIT_BUILD_TESTS=OFF > build/cuda-check.log 2>&1 \
    || { cat build/cuda-check.log; exit 1; }
  cmake --build build/cuda-check -j "$JOBS" >> build/cuda-check.log 2>&1 || { cat build/cuda-check.log; exit 1; }
  echo "[blkit] CUDA sources compiled and linked"
else
  echo "[blkit] nvcc not found: CUDA compile check skipped"
fi


echo "[blkit] Python tests (pytest; Triton kernels run through TRITON_INTERPRET=1 without a GPU)"
python -m pytest tests -q -p no:cacheprovider "$@"
