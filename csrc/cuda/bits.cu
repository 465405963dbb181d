// CUDA bit ops: pack / unpack (little-endian bit order within each byte), XOR, popcount.
#include "blkit/blkit.h"
#include "device.cuh"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

using namespace dev;
using detail::aligned16;

// --- pack -----------------------------------------------------------------------------------------
struct PackOp {
  static constexpr bool kTwoOutputs = false;
  static constexpr int kMinBlocks = 4;
  static constexpr bool kPackedInput = false;
  const void* bits;
  int dtype;
  __device__ void begin() {}
  __device__ void end() {}
  __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn, uint32_t*) const {
    return load_bits<kChunk>(bits, dtype, base, count, vec);
  }
};

// --- unpack ---------------------------------------------------------------------------------------
template <typename T>
__global__ void __launch_bounds__(256) unpack_kernel(const uint8_t* packed, T* out, int64_t n, int64_t channels,
                                                     int64_t width, T one, bool vec) {
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    store_values<T>(out, base, count, v, load_packed_bits(packed, channels, width, base, count, v), one);
  });
}

// Bit pattern of 1 in a dtype, and the unsigned type of its size.
template <typename T>
void launch_unpack(const uint8_t* packed, void* out, int64_t rows, int64_t num_bits, T one, void* stream) {
  const int64_t n = rows * num_bits;
  const bool vec = aligned16(packed) && aligned16(out);
  const int64_t blocks = detail::grid_blocks((n + kChunk - 1) / kChunk);
  unpack_kernel<T><<<static_cast<unsigned>(blocks), detail::kThreads, 0, detail::as_stream(stream)>>>(
      packed, static_cast<T*>(out), n, num_bits, packed_row_bytes(num_bits), one, vec);
  detail::check_launch("unpack_bits");
}

// --- xor ------------------------------------------------------------------------------------------
__global__ void __launch_bounds__(256) xor_bytes_kernel(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n,
                                                        bool vec) {
  const int64_t units = (n + 15) / 16;
  for_each_unit(units, [&](int64_t u) {
    const int64_t base = u * 16;
    if (vec && n - base >= 16) {
      const uint4 x = __ldg(reinterpret_cast<const uint4*>(a + base));
      const uint4 y = __ldg(reinterpret_cast<const uint4*>(b + base));
      *reinterpret_cast<uint4*>(out + base) = make_uint4(x.x ^ y.x, x.y ^ y.y, x.z ^ y.z, x.w ^ y.w);
    } else {
      const int64_t end = n - base < 16 ? n : base + 16;
      for (int64_t i = base; i < end; ++i) out[i] = static_cast<uint8_t>(__ldg(a + i) ^ __ldg(b + i));
    }
  });
}

struct XorNonzeroOp {
  static constexpr bool kTwoOutputs = false;
  static constexpr int kMinBlocks = 4;
  static constexpr bool kPackedInput = false;
  const void* a;
  const void* b;
  int dtype;
  __device__ void begin() {}
  __device__ void end() {}
  __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn, uint32_t*) const {
    return load_bits<kChunk>(a, dtype, base, count, vec) ^ load_bits<kChunk>(b, dtype, base, count, vec);
  }
};

// --- popcount -------------------------------------------------------------------------------------
// Unit u = seg * q_total + q: output q = o * inner + i, dim segment `seg` ([seg * seg_len, ...)).
// Consecutive lanes take consecutive outputs (coalesced for inner > 1; rows for inner == 1).
__global__ void __launch_bounds__(256)
    popcount_kernel(const uint8_t* packed, unsigned long long* out, int64_t outer, int64_t dim, int64_t inner,
                    int64_t nseg, int64_t seg_len, bool accumulate) {
  const int64_t q_total = outer * inner;
  const int64_t units = q_total * nseg;
  for_each_unit(units, [&](int64_t u) {
    const int64_t seg = u / q_total;
    const int64_t q = u - seg * q_total;
    const int64_t o = q / inner;
    const int64_t i = q - o * inner;
    const int64_t d0 = seg * seg_len;
    const int64_t d1 = d0 + seg_len < dim ? d0 + seg_len : dim;
    unsigned long long sum = 0;
    if (inner == 1) {
      // Contiguous bytes: single bytes up to 8-byte alignment, then 64-bit words, then the tail.
      const uint8_t* p = packed + o * dim + d0;
      int64_t len = d1 - d0;
      while (len > 0 && (reinterpret_cast<uintptr_t>(p) & 7u) != 0) {
        sum += static_cast<unsigned>(__popc(__ldg(p)));
        ++p;
        --len;
      }
      const unsigned long long* w = reinterpret_cast<const unsigned long long*>(p);
      const int64_t words = len >> 3;
      for (int64_t k = 0; k < words; ++k) sum += static_cast<unsigned>(__popcll(__ldg(w + k)));
      p += words << 3;
      len -= words << 3;
      for (int64_t k = 0; k < len; ++k) sum += static_cast<unsigned>(__popc(__ldg(p + k)));
    } else {
      const uint8_t* p = packed + (o * dim + d0) * inner + i;
      for (int64_t d = d0; d < d1; ++d, p += inner) sum += static_cast<unsigned>(__popc(__ldg(p)));
    }
    if (accumulate) {
      if (sum != 0) atomicAdd(out + q, sum);
    } else {
      out[q] = sum;
    }
  });
}

}  // namespace

void pack_bits_typed(const void* bits, DType dtype, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream) {
  detail::check_shape(rows, num_bits, "pack_bits");
  (void)cpu::dtype_size(dtype);  // throws on an unknown code
  if (rows == 0 || num_bits == 0) return;
  const PackOp op{bits, static_cast<int>(dtype)};
  dev::launch_bits(op, packed, nullptr, rows, num_bits, true, aligned16(bits) && aligned16(packed), stream,
                   "pack_bits");
}

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream) {
  pack_bits_typed(bits, cpu::kByte, packed, rows, num_bits, stream);
}

void unpack_bits_typed(const uint8_t* packed, void* bits, DType dtype, int64_t rows, int64_t num_bits,
                       void* stream) {
  detail::check_shape(rows, num_bits, "unpack_bits");
  if (rows == 0 || num_bits == 0) return;
  switch (dtype) {
    case cpu::kByte:
      launch_unpack<uint8_t>(packed, bits, rows, num_bits, 1, stream);
      break;
    case cpu::kInt16:
      launch_unpack<uint16_t>(packed, bits, rows, num_bits, 1, stream);
      break;
    case cpu::kFloat16:
      launch_unpack<uint16_t>(packed, bits, rows, num_bits, 0x3C00u, stream);
      break;
    case cpu::kBFloat16:
      launch_unpack<uint16_t>(packed, bits, rows, num_bits, 0x3F80u, stream);
      break;
    case cpu::kInt32:
      launch_unpack<uint32_t>(packed, bits, rows, num_bits, 1u, stream);
      break;
    case cpu::kFloat32:
      launch_unpack<uint32_t>(packed, bits, rows, num_bits, 0x3F800000u, stream);
      break;
    case cpu::kInt64:
      launch_unpack<uint64_t>(packed, bits, rows, num_bits, 1ull, stream);
      break;
    case cpu::kFloat64:
      launch_unpack<uint64_t>(packed, bits, rows, num_bits, 0x3FF0000000000000ull, stream);
      break;
    default:
      throw std::invalid_argument("cuda unpack_bits: unknown dtype");
  }
}

void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits, void* stream) {
  unpack_bits_typed(packed, bits, cpu::kByte, rows, num_bits, stream);
}

void xor_bytes(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n, void* stream) {
  detail::check_nonnegative(n, "n", "xor_bits");
  if (n == 0) return;
  const bool vec = aligned16(a) && aligned16(b) && aligned16(out);
  const int64_t blocks = detail::grid_blocks((n + 15) / 16);
  xor_bytes_kernel<<<static_cast<unsigned>(blocks), detail::kThreads, 0, detail::as_stream(stream)>>>(a, b, out, n,
                                                                                                      vec);
  detail::check_launch("xor_bits");
}

void xor_nonzero(const void* a, const void* b, DType dtype, uint8_t* out, int64_t n, void* stream) {
  detail::check_nonnegative(n, "n", "xor_bits");
  (void)cpu::dtype_size(dtype);
  if (n == 0) return;
  const XorNonzeroOp op{a, b, static_cast<int>(dtype)};
  dev::launch_bits(op, out, nullptr, 1, n, false, aligned16(a) && aligned16(b) && aligned16(out), stream,
                   "xor_bits");
}

void popcount(const uint8_t* packed, int64_t* out, int64_t outer, int64_t dim, int64_t inner, void* stream) {
  detail::check_nonnegative(outer, "outer", "popcount");
  detail::check_nonnegative(dim, "dim", "popcount");
  detail::check_nonnegative(inner, "inner", "popcount");
  const int64_t q_total = outer * inner;
  if (q_total == 0) return;
  const cudaStream_t s = detail::as_stream(stream);
  if (dim == 0) {
    detail::check_cuda(cudaMemsetAsync(out, 0, static_cast<size_t>(q_total) * sizeof(int64_t), s),
                       "cudaMemsetAsync(popcount)");
    return;
  }
  // Few outputs over a long dim (e.g. a 1-D tensor): split dim into segments so that every resident
  // thread has work; the segment sums are added with integer atomics (exact, order-independent).
  constexpr int64_t kMinSegment = 256;  // bytes
  const int64_t target = static_cast<int64_t>(detail::sm_count()) * detail::kBlocksPerSm * detail::kThreads;
  int64_t nseg = 1;
  if (q_total < target && dim > kMinSegment) {
    const int64_t by_len = (dim + kMinSegment - 1) / kMinSegment;
    const int64_t by_threads = (target + q_total - 1) / q_total;
    nseg = by_len < by_threads ? by_len : by_threads;
  }
  const int64_t seg_len = (dim + nseg - 1) / nseg;
  nseg = (dim + seg_len - 1) / seg_len;
  const bool accumulate = nseg > 1;
  if (accumulate) {
    detail::check_cuda(cudaMemsetAsync(out, 0, static_cast<size_t>(q_total) * sizeof(int64_t), s),
                       "cudaMemsetAsync(popcount)");
  }
  const int64_t blocks = detail::grid_blocks(q_total * nseg);
  popcount_kernel<<<static_cast<unsigned>(blocks), detail::kThreads, 0, s>>>(
      packed, reinterpret_cast<unsigned long long*>(out), outer, dim, inner, nseg, seg_len, accumulate);
  detail::check_launch("popcount");
}

}  // namespace cuda
}  // namespace blkit
