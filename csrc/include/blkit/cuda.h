// blkit CUDA kernels (torch-free), declared only with BLKIT_WITH_CUDA. Device pointers; `stream` is a
// cudaStream_t (nullptr = legacy default stream). Asynchronous on `stream`; throw std::runtime_error if
// the launch fails. Layouts and semantics as documented in blkit.h.
#pragma once

#include <stdint.h>

#if defined(BLKIT_WITH_CUDA)
namespace blkit {
namespace cuda {

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits, void* stream);
void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, void* stream);

}  // namespace cuda
}  // namespace blkit
#endif
