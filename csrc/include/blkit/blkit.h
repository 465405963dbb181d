// blkit native API (torch-free).
//
// Bit packing: bits is row-major [rows, num_bits] of bytes (nonzero = 1); packed is
// [rows, ceil(num_bits / 8)], channel c in byte c / 8, bit c % 8 (little-endian bit
// order, like numpy.packbits(axis=-1, bitorder="little")), padding bits zero.
// Random: out[i] = uniform_at(seed, offset + i) (see philox.h), counters wrap mod 2**64.
#pragma once

#include <stdint.h>

namespace blkit {

// Bytes per packed row.
inline int64_t packed_row_bytes(int64_t num_bits) { return (num_bits + 7) / 8; }

namespace cpu {

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits);
void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace cpu

#if defined(BLKIT_WITH_CUDA)
namespace cuda {

// Device pointers; `stream` is a cudaStream_t (nullptr = legacy default stream).
// Asynchronous on `stream`; throw std::runtime_error if the launch fails.
void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits, void* stream);
void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, void* stream);

}  // namespace cuda
#endif

}  // namespace blkit
