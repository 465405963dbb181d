// blkit CPU kernels (torch-free). Host pointers; layouts and semantics as documented in blkit.h.
#pragma once

#include <stdint.h>

namespace blkit {
namespace cpu {

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits);
void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace cpu
}  // namespace blkit
