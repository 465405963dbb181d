// CUDA Philox uniforms, bit-exact with Triton's tl.rand(seed, offset + i).
#include "blkit/blkit.h"
#include "blkit/philox.h"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

__global__ void uniform_kernel(float* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = uniform_at(seed, offset + static_cast<uint64_t>(i));  // wraps modulo 2**64
  }
}

}  // namespace

void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, void* stream) {
  if (n < 0) throw std::invalid_argument("cuda uniform: n must be non-negative");
  if (n == 0) return;
  uniform_kernel<<<detail::num_blocks(n), detail::kThreads, 0, static_cast<cudaStream_t>(stream)>>>(out, n, seed,
                                                                                                    offset);
  detail::check_launch("uniform");
}

}  // namespace cuda
}  // namespace blkit
