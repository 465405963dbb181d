// CPU Philox uniforms, bit-exact with Triton's tl.rand(seed, offset + i).
#include "blkit/blkit.h"
#include "blkit/philox.h"

#include <stdexcept>

namespace blkit {
namespace cpu {

void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  if (n < 0) throw std::invalid_argument("uniform: n must be non-negative");
  if (n == 0) return;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n >= (int64_t{1} << 14))
#endif
  for (int64_t i = 0; i < n; ++i) {
    out[i] = uniform_at(seed, offset + static_cast<uint64_t>(i));  // wraps modulo 2**64
  }
}

}  // namespace cpu
}  // namespace blkit
