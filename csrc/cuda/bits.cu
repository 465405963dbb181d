// CUDA bit packing / unpacking (little-endian bit order within each byte).
#include "blkit/blkit.h"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

// One thread per packed byte: gather up to 8 bit-bytes of its row.
__global__ void pack_bits_kernel(const uint8_t* __restrict__ bits, uint8_t* __restrict__ packed, int64_t rows,
                                 int64_t num_bits, int64_t row_bytes) {
  const int64_t total = rows * row_bytes;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t r = idx / row_bytes;
    const int64_t j = idx - r * row_bytes;
    const int64_t c0 = 8 * j;
    const int64_t n = (num_bits - c0) < 8 ? (num_bits - c0) : 8;
    const uint8_t* in = bits + r * num_bits + c0;
    unsigned int acc = 0;
    for (int64_t k = 0; k < n; ++k) acc |= (in[k] != 0 ? 1u : 0u) << k;
    packed[idx] = static_cast<uint8_t>(acc);  // padding bits stay 0
  }
}

// One thread per output bit-byte.
__global__ void unpack_bits_kernel(const uint8_t* __restrict__ packed, uint8_t* __restrict__ bits, int64_t rows,
                                   int64_t num_bits, int64_t row_bytes) {
  const int64_t total = rows * num_bits;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t r = idx / num_bits;
    const int64_t c = idx - r * num_bits;
    bits[idx] = static_cast<uint8_t>((packed[r * row_bytes + c / 8] >> (c % 8)) & 1u);
  }
}

}  // namespace

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream) {
  detail::check_shape(rows, num_bits, "cuda pack_bits");
  if (rows == 0 || num_bits == 0) return;
  const int64_t row_bytes = packed_row_bytes(num_bits);
  const int64_t total = rows * row_bytes;
  pack_bits_kernel<<<detail::num_blocks(total), detail::kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      bits, packed, rows, num_bits, row_bytes);
  detail::check_launch("pack_bits");
}

void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits, void* stream) {
  detail::check_shape(rows, num_bits, "cuda unpack_bits");
  if (rows == 0 || num_bits == 0) return;
  const int64_t row_bytes = packed_row_bytes(num_bits);
  const int64_t total = rows * num_bits;
  unpack_bits_kernel<<<detail::num_blocks(total), detail::kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      packed, bits, rows, num_bits, row_bytes);
  detail::check_launch("unpack_bits");
}

}  // namespace cuda
}  // namespace blkit
