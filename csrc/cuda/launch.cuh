// Shared host-side launch helpers for blkit CUDA kernels (internal header).
//
// Grid sizing: every kernel walks its work units with per-warp contiguous ranges (see device.cuh), so
// the grid only has to fill the device: at most kWaves waves of fully resident 256-thread blocks on
// every SM. The SM count is queried once per device (cudaDeviceGetAttribute) and cached.
#pragma once

#include <cuda_runtime.h>

#include <stdint.h>

#include <stdexcept>
#include <string>

namespace blkit {
namespace cuda {
namespace detail {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
// 256-thread blocks resident per SM at full occupancy (2048 threads per SM on sm_80 and sm_90).
constexpr int kBlocksPerSm = 8;
// Waves of resident blocks in a grid: enough to hide the tail of uneven blocks, few enough that each
// thread loops over several units (per-warp ranges stay long and contiguous).
constexpr int kWaves = 2;

// Multiprocessors of the current device, queried once per device and cached (launch.cu).
int sm_count();

// Blocks for `units` work units of one thread each: ceil(units / kThreads), at most
// sm_count() * kBlocksPerSm * kWaves, at least 1.
int64_t grid_blocks(int64_t units);

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("blkit CUDA ") + what + " failed: " + cudaGetErrorName(err) + ": " +
                             cudaGetErrorString(err));
  }
}

// After every launch: a bad configuration, a missing kernel image for this GPU, or an earlier
// asynchronous error surfaces here as std::runtime_error naming the kernel.
inline void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("blkit CUDA kernel ") + kernel + " launch failed: " +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

inline void check_nonnegative(int64_t v, const char* what, const char* fn) {
  if (v < 0) throw std::invalid_argument(std::string("cuda ") + fn + ": " + what + " must be non-negative");
}

inline void check_shape(int64_t rows, int64_t num_bits, const char* fn) {
  check_nonnegative(rows, "rows", fn);
  check_nonnegative(num_bits, "num_bits", fn);
}

inline void check_not_null(const void* p, const char* what, const char* fn) {
  if (p == nullptr) throw std::invalid_argument(std::string("cuda ") + fn + ": " + what + " must not be null");
}

}  // namespace detail
}  // namespace cuda
}  // namespace blkit
