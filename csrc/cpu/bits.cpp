// CPU bit ops: pack / unpack (little-endian bit order within each byte), XOR, popcount.
// Memory-bound loops on whole 64-bit words; OpenMP over large ranges.
#include "cpu_internal.h"

namespace blkit {
namespace cpu {
namespace {

using detail::kTile;
using detail::parallel_for;
using detail::Tile;
using detail::TileGrid;

// Byte kernels do little work per element, and opening the thread team (fork, join, the guard's timing) costs
// ~5 us, as much as XORing 128 KiB on one core. So their `elements` argument to parallel_for is scaled by how
// much cheaper an element is than a sampling-kernel element, which puts the parallel threshold (kParallelMin
// units) at ~20 us of one-thread work (measured on the 2-core VM: docs/benchmarks.md, session 4).
constexpr int64_t kPackBitsPerUnit = 256;    // dense bytes packed: parallel from 2M bits (1M bits: 8 us on one core)
constexpr int64_t kUnpackBitsPerUnit = 32;   // bits unpacked: from 256K bits (1M bits: 17 us on one, 11 us on two)
constexpr int64_t kXorBytesPerUnit = 128;    // bytes XORed: from 1 MiB (128 KiB: 3.5 us on one core, 7 us on two)

// body(lo, len) for the chunks [lo, lo + len) of [0, n), `chunk` long but the last; over the thread team when
// `cost_units` (see above) reaches the parallel threshold.
template <class Body>
void for_each_chunk(int64_t n, int64_t chunk, int64_t cost_units, Body&& body) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  parallel_for(chunks, cost_units, [&](int64_t c) {
    const int64_t lo = c * chunk;
    body(lo, n - lo < chunk ? n - lo : chunk);
  });
}

void check_shape(int64_t rows, int64_t num_bits, const char* fn) {
  detail::check_nonnegative(rows, "rows", fn);
  detail::check_nonnegative(num_bits, "num_bits", fn);
}

inline void pack_row(const detail::KernelTable& k, const uint8_t* in, uint8_t* out, int64_t num_bits) {
  const int64_t full = num_bits / 8;
  k.pack_bytes(in, out, full);
  const int64_t rem = num_bits % 8;
  if (rem != 0) out[full] = detail::pack_partial(in + 8 * full, rem);  // padding bits stay 0
}

inline void unpack_row(const detail::KernelTable& k, const uint8_t* in, uint8_t* out, int64_t num_bits) {
  const int64_t full = num_bits / 8;
  k.unpack_bytes(in, out, full);
  const int64_t rem = num_bits % 8;
  if (rem != 0) {
    const uint8_t b = in[full];
    uint8_t* tail = out + 8 * full;
    for (int64_t k = 0; k < rem; ++k) tail[k] = static_cast<uint8_t>((b >> k) & 1u);  // padding ignored
  }
}

// Dense values of T -> 0 / 1 bytes: nonzero after masking (the mask drops the sign bit of floats).
template <class T>
inline void nonzero_bytes(const T* src, int64_t n, T mask, uint8_t* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = (src[j] & mask) != 0;
}

void to_bytes(const void* src, DType dtype, int64_t start, int64_t n, uint8_t* dst) {
  switch (dtype) {
    case kByte:
      nonzero_bytes<uint8_t>(static_cast<const uint8_t*>(src) + start, n, 0xFF, dst);
      break;
    case kInt16:
      nonzero_bytes<uint16_t>(static_cast<const uint16_t*>(src) + start, n, 0xFFFF, dst);
      break;
    case kFloat16:
    case kBFloat16:
      nonzero_bytes<uint16_t>(static_cast<const uint16_t*>(src) + start, n, 0x7FFF, dst);
      break;
    case kInt32:
      nonzero_bytes<uint32_t>(static_cast<const uint32_t*>(src) + start, n, 0xFFFFFFFFu, dst);
      break;
    case kFloat32:
      nonzero_bytes<uint32_t>(static_cast<const uint32_t*>(src) + start, n, 0x7FFFFFFFu, dst);
      break;
    case kInt64:
      nonzero_bytes<uint64_t>(static_cast<const uint64_t*>(src) + start, n, ~uint64_t{0}, dst);
      break;
    case kFloat64:
      nonzero_bytes<uint64_t>(static_cast<const uint64_t*>(src) + start, n, 0x7FFFFFFFFFFFFFFFull, dst);
      break;
    default:
      throw std::invalid_argument("blkit cpu: unknown dtype");
  }
}

template <class T>
inline void bytes_to(const uint8_t* src, int64_t n, T one, T* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j] ? one : T(0);
}

void from_bytes(const uint8_t* src, int64_t n, DType dtype, void* dst, int64_t start) {
  switch (dtype) {
    case kByte:
      memcpy(static_cast<uint8_t*>(dst) + start, src, static_cast<size_t>(n));
      break;
    case kInt16:
      bytes_to<uint16_t>(src, n, 1, static_cast<uint16_t*>(dst) + start);
      break;
    case kFloat16:
      bytes_to<uint16_t>(src, n, 0x3C00u, static_cast<uint16_t*>(dst) + start);
      break;
    case kBFloat16:
      bytes_to<uint16_t>(src, n, 0x3F80u, static_cast<uint16_t*>(dst) + start);
      break;
    case kInt32:
      bytes_to<uint32_t>(src, n, 1u, static_cast<uint32_t*>(dst) + start);
      break;
    case kFloat32:
      bytes_to<float>(src, n, 1.0f, static_cast<float*>(dst) + start);
      break;
    case kInt64:
      bytes_to<uint64_t>(src, n, 1u, static_cast<uint64_t*>(dst) + start);
      break;
    case kFloat64:
      bytes_to<double>(src, n, 1.0, static_cast<double*>(dst) + start);
      break;
    default:
      throw std::invalid_argument("blkit cpu: unknown dtype");
  }
}

// Set bits of each byte of a 64-bit word, summed per byte lane (each lane <= 8).
inline uint64_t popcount_bytes(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  return (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
}

inline uint8_t popcount_byte(uint8_t b) {
  uint32_t x = b;
  x = x - ((x >> 1) & 0x55u);
  x = (x & 0x33u) + ((x >> 2) & 0x33u);
  return static_cast<uint8_t>((x + (x >> 4)) & 0x0Fu);
}

int64_t popcount_run(const uint8_t* p, int64_t n) {
  int64_t total = 0;
  int64_t j = 0;
  // Byte-lane sums of up to 31 words fit in a byte (31 * 8 = 248).
  while (n - j >= 8) {
    const int64_t words = (n - j) / 8 < 31 ? (n - j) / 8 : 31;
    uint64_t lanes = 0;
    for (int64_t w = 0; w < words; ++w) lanes += popcount_bytes(detail::load_u64(p + j + 8 * w));
    // 8 byte lanes -> 4 16-bit lanes (each <= 496), then their sum (<= 1984) in the top 16 bits.
    const uint64_t pairs = (lanes & 0x00FF00FF00FF00FFULL) + ((lanes >> 8) & 0x00FF00FF00FF00FFULL);
    total += static_cast<int64_t>((pairs * 0x0001000100010001ULL) >> 48);
    j += 8 * words;
  }
  for (; j < n; ++j) total += popcount_byte(p[j]);
  return total;
}

}  // namespace

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits) {
  check_shape(rows, num_bits, "pack_bits");
  if (rows == 0 || num_bits == 0) return;
  const detail::KernelTable& k = detail::kernels();
  const int64_t total = rows * num_bits;
  if (num_bits % 8 == 0) {
    // Rows are contiguous in both layouts: one flat loop over output bytes.
    for_each_chunk(total / 8, kTile * 8, total / kPackBitsPerUnit,  // chunks of output bytes
                   [&](int64_t lo, int64_t len) { k.pack_bytes(bits + 8 * lo, packed + lo, len); });
    return;
  }
  const int64_t row_bytes = packed_row_bytes(num_bits);
  parallel_for(rows, total / kPackBitsPerUnit,
               [&](int64_t r) { pack_row(k, bits + r * num_bits, packed + r * row_bytes, num_bits); });
}

void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits) {
  check_shape(rows, num_bits, "unpack_bits");
  if (rows == 0 || num_bits == 0) return;
  const detail::KernelTable& k = detail::kernels();
  const int64_t total = rows * num_bits;
  if (num_bits % 8 == 0) {
    for_each_chunk(total / 8, kTile * 8, total / kUnpackBitsPerUnit,  // chunks of input bytes
                   [&](int64_t lo, int64_t len) { k.unpack_bytes(packed + lo, bits + 8 * lo, len); });
    return;
  }
  const int64_t row_bytes = packed_row_bytes(num_bits);
  parallel_for(rows, total / kUnpackBitsPerUnit,
               [&](int64_t r) { unpack_row(k, packed + r * row_bytes, bits + r * num_bits, num_bits); });
}

void pack_bits_typed(const void* bits, DType dtype, uint8_t* packed, int64_t rows, int64_t num_bits) {
  if (dtype == kByte) {
    pack_bits(static_cast<const uint8_t*>(bits), packed, rows, num_bits);
    return;
  }
  check_shape(rows, num_bits, "pack_bits");
  (void)dtype_size(dtype);
  const TileGrid grid(rows, num_bits);
  const int64_t width = packed_row_bytes(num_bits);
  parallel_for(grid.count, rows * num_bits, [&](int64_t ti) {
    const Tile t = grid.tile(ti);
    uint8_t buf[kTile + 8];
    to_bytes(bits, dtype, t.start, t.n, buf);
    detail::pack_tile(buf, t, width, packed);
  });
}

void unpack_bits_typed(const uint8_t* packed, void* bits, DType dtype, int64_t rows, int64_t num_bits) {
  if (dtype == kByte) {
    unpack_bits(packed, static_cast<uint8_t*>(bits), rows, num_bits);
    return;
  }
  check_shape(rows, num_bits, "unpack_bits");
  (void)dtype_size(dtype);
  const TileGrid grid(rows, num_bits);
  const int64_t width = packed_row_bytes(num_bits);
  parallel_for(grid.count, rows * num_bits, [&](int64_t ti) {
    const Tile t = grid.tile(ti);
    uint8_t buf[kTile + 8];
    detail::unpack_tile(packed, width, t, buf);
    from_bytes(buf, t.n, dtype, bits, t.start);
  });
}

void xor_bytes(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n) {
  detail::check_nonnegative(n, "n", "xor_bits");
  if (n == 0) return;
  for_each_chunk(n, kTile * 16, n / kXorBytesPerUnit, [&](int64_t lo, int64_t len) {
    // Local copies of the pointers: a uint8_t store may alias anything, including the pointers the lambda
    // captured by reference, which would force a reload per byte and keep the loop scalar.
    const uint8_t* pa = a + lo;
    const uint8_t* pb = b + lo;
    uint8_t* po = out + lo;
    for (int64_t j = 0; j < len; ++j) po[j] = pa[j] ^ pb[j];
  });
}

void xor_nonzero(const void* a, const void* b, DType dtype, uint8_t* out, int64_t n) {
  detail::check_nonnegative(n, "n", "xor_bits");
  (void)dtype_size(dtype);
  if (n == 0) return;
  const TileGrid grid(1, n);
  parallel_for(grid.count, n, [&](int64_t ti) {
    const Tile t = grid.tile(ti);
    uint8_t ba[kTile];
    uint8_t bb[kTile];
    to_bytes(a, dtype, t.start, t.n, ba);
    to_bytes(b, dtype, t.start, t.n, bb);
    uint8_t* o = out + t.start;
    for (int64_t j = 0; j < t.n; ++j) o[j] = ba[j] ^ bb[j];
  });
}

void popcount(const uint8_t* packed, int64_t* out, int64_t outer, int64_t dim, int64_t inner) {
  detail::check_nonnegative(outer, "outer", "popcount");
  detail::check_nonnegative(dim, "dim", "popcount");
  detail::check_nonnegative(inner, "inner", "popcount");
  const int64_t total = outer * dim * inner;
  if (inner == 1) {
    parallel_for(outer, total / 8, [&](int64_t o) { out[o] = popcount_run(packed + o * dim, dim); });
    return;
  }
  // Counts of one byte column summed over `dim`, vectorized across `inner`.
  parallel_for(outer, total / 8, [&](int64_t o) {
    int64_t* dst = out + o * inner;
    for (int64_t i = 0; i < inner; ++i) dst[i] = 0;
    for (int64_t d = 0; d < dim; ++d) {
      const uint8_t* src = packed + (o * dim + d) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += popcount_byte(src[i]);
    }
  });
}

}  // namespace cpu
}  // namespace blkit
