// Shared launch helpers for blkit CUDA kernels (internal header).
#pragma once

#include <cuda_runtime.h>

#include <stdint.h>

#include <stdexcept>
#include <string>

namespace blkit {
namespace cuda {
namespace detail {

constexpr int kThreads = 256;
// Grid-stride loops cover the rest; keeps the grid well inside the 2**31 - 1 limit.
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

inline unsigned int num_blocks(int64_t work) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned int>(blocks);
}

inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("blkit CUDA ") + what + " launch failed: " + cudaGetErrorName(err) +
                             ": " + cudaGetErrorString(err));
  }
}

inline void check_shape(int64_t rows, int64_t num_bits, const char* fn) {
  if (rows < 0 || num_bits < 0) {
    throw std::invalid_argument(std::string(fn) + ": rows and num_bits must be non-negative");
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace blkit
