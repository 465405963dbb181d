// CPU bit packing / unpacking (little-endian bit order within each byte).
#include "blkit/blkit.h"

#include <stdexcept>
#include <string>

#include <string.h>

namespace blkit {
namespace cpu {
namespace {

// Below this many bit-bytes the work runs on the calling thread.
constexpr int64_t kParallelThreshold = int64_t{1} << 16;

constexpr uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
constexpr uint64_t kHigh = 0x8080808080808080ULL;

// Per byte of x: 0x80 if that byte is nonzero, else 0 (no carries cross byte lanes).
inline uint64_t nonzero_high_bits(uint64_t x) { return (((x & kLow7) + kLow7) | x) & kHigh; }

inline uint64_t load_u64(const uint8_t* p) {
  uint64_t x;
  memcpy(&x, p, sizeof(x));
  return x;
}

inline void store_u64(uint8_t* p, uint64_t x) { memcpy(p, &x, sizeof(x)); }

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BLKIT_LITTLE_ENDIAN 1
#else
#define BLKIT_LITTLE_ENDIAN 0
#endif

// 8 bit-bytes -> 1 packed byte.
inline uint8_t pack8(const uint8_t* in) {
#if BLKIT_LITTLE_ENDIAN
  // Byte i of `ones` is 0 or 1 (at bit 8i); the multiply moves bit 8i to bit 56 + i and the
  // shifted copies of other bytes never land in (or carry into) bits 56..63.
  const uint64_t ones = nonzero_high_bits(load_u64(in)) >> 7;
  return static_cast<uint8_t>((ones * 0x0102040810204080ULL) >> 56);
#else
  uint8_t acc = 0;
  for (int k = 0; k < 8; ++k) acc |= static_cast<uint8_t>((in[k] != 0) << k);
  return acc;
#endif
}

// 1 packed byte -> 8 bit-bytes (0/1).
inline void unpack8(uint8_t b, uint8_t* out) {
#if BLKIT_LITTLE_ENDIAN
  // Broadcast b to every byte, keep bit k in byte k, then turn each nonzero byte into 1.
  const uint64_t spread = (b * 0x0101010101010101ULL) & 0x8040201008040201ULL;
  store_u64(out, nonzero_high_bits(spread) >> 7);
#else
  for (int k = 0; k < 8; ++k) out[k] = static_cast<uint8_t>((b >> k) & 1u);
#endif
}

inline void pack_row(const uint8_t* in, uint8_t* out, int64_t num_bits) {
  const int64_t full = num_bits / 8;
  for (int64_t j = 0; j < full; ++j) out[j] = pack8(in + 8 * j);
  const int64_t rem = num_bits % 8;
  if (rem != 0) {
    const uint8_t* tail = in + 8 * full;
    uint8_t acc = 0;
    for (int64_t k = 0; k < rem; ++k) acc |= static_cast<uint8_t>((tail[k] != 0) << k);
    out[full] = acc;  // padding bits stay 0
  }
}

inline void unpack_row(const uint8_t* in, uint8_t* out, int64_t num_bits) {
  const int64_t full = num_bits / 8;
  for (int64_t j = 0; j < full; ++j) unpack8(in[j], out + 8 * j);
  const int64_t rem = num_bits % 8;
  if (rem != 0) {
    const uint8_t b = in[full];
    uint8_t* tail = out + 8 * full;
    for (int64_t k = 0; k < rem; ++k) tail[k] = static_cast<uint8_t>((b >> k) & 1u);  // padding ignored
  }
}

void check_shape(int64_t rows, int64_t num_bits, const char* fn) {
  if (rows < 0 || num_bits < 0) {
    throw std::invalid_argument(std::string(fn) + ": rows and num_bits must be non-negative");
  }
}

}  // namespace

void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits) {
  check_shape(rows, num_bits, "pack_bits");
  if (rows == 0 || num_bits == 0) return;
  const int64_t total = rows * num_bits;
  if (num_bits % 8 == 0) {
    // Rows are contiguous in both layouts: one flat loop over output bytes.
    const int64_t out_bytes = total / 8;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total >= kParallelThreshold)
#endif
    for (int64_t j = 0; j < out_bytes; ++j) packed[j] = pack8(bits + 8 * j);
    return;
  }
  const int64_t row_bytes = packed_row_bytes(num_bits);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total >= kParallelThreshold && rows > 1)
#endif
  for (int64_t r = 0; r < rows; ++r) pack_row(bits + r * num_bits, packed + r * row_bytes, num_bits);
}

void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits) {
  check_shape(rows, num_bits, "unpack_bits");
  if (rows == 0 || num_bits == 0) return;
  const int64_t total = rows * num_bits;
  if (num_bits % 8 == 0) {
    const int64_t in_bytes = total / 8;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total >= kParallelThreshold)
#endif
    for (int64_t j = 0; j < in_bytes; ++j) unpack8(packed[j], bits + 8 * j);
    return;
  }
  const int64_t row_bytes = packed_row_bytes(num_bits);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (total >= kParallelThreshold && rows > 1)
#endif
  for (int64_t r = 0; r < rows; ++r) unpack_row(packed + r * row_bytes, bits + r * num_bits, num_bits);
}

}  // namespace cpu
}  // namespace blkit
