// blkit native API (torch-free): the CPU kernels (cpu.h) and, with BLKIT_WITH_CUDA, the CUDA kernels
// (cuda.h) share one set of signatures and semantics.
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

}  // namespace blkit

#include "blkit/cpu.h"
#include "blkit/cuda.h"
