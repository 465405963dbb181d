// pack_bits / unpack_bits against a naive reference, and cpu::uniform across 2**32 offsets.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "blkit/blkit.h"
#include "blkit/philox.h"
#include "test_util.h"

namespace {

using blkit_test::Rng;

std::vector<uint8_t> naive_unpack(const std::vector<uint8_t>& packed, size_t rows, size_t num_bits) {
  const size_t rb = (num_bits + 7) / 8;
  std::vector<uint8_t> out(rows * num_bits, 0);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < num_bits; ++c) out[r * num_bits + c] = (packed[r * rb + c / 8] >> (c % 8)) & 1u;
  return out;
}

// Guard bytes after each buffer catch out-of-bounds writes.
constexpr size_t kGuard = 16;
constexpr uint8_t kGuardByte = 0xA5;

bool guard_ok(const std::vector<uint8_t>& buf, size_t n) {
  for (size_t i = n; i < n + kGuard; ++i)
    if (buf[i] != kGuardByte) return false;
  return true;
}

// mode 0: bytes 0/1; mode 1: arbitrary bytes (nonzero = 1); mode 2: mostly 1 with some zeros.
void check_case(int64_t rows, int64_t num_bits, int mode, uint64_t seed) {
  Rng rng(seed);
  const int64_t rb = (num_bits + 7) / 8;
  const size_t nbits = static_cast<size_t>(rows * num_bits);
  const size_t npacked = static_cast<size_t>(rows * rb);

  std::vector<uint8_t> bits(nbits + kGuard, kGuardByte);
  for (size_t i = 0; i < nbits; ++i) {
    const uint64_t x = rng.next();
    if (mode == 0) bits[i] = static_cast<uint8_t>(x & 1u);
    else if (mode == 1) bits[i] = static_cast<uint8_t>(x >> 56) & ((x & 3u) ? 0xFF : 0x00);
    else bits[i] = (x % 7 == 0) ? 0 : static_cast<uint8_t>(1u << (x % 8));
  }
  const std::vector<uint8_t> bits_in(bits.begin(), bits.begin() + static_cast<std::ptrdiff_t>(nbits));

  std::vector<uint8_t> packed(npacked + kGuard, kGuardByte);
  blkit::cpu::pack_bits(bits.data(), packed.data(), rows, num_bits);
  const std::vector<uint8_t> expect_packed = blkit_test::naive_pack(bits_in.data(), rows, num_bits);
  if (!guard_ok(packed, npacked) || !blkit_test::same_bytes(packed.data(), expect_packed.data(), npacked)) {
    printf("FAIL pack_bits rows=%lld num_bits=%lld mode=%d\n", (long long)rows, (long long)num_bits, mode);
    ++blkit_test::failures();
    return;
  }

  // Unpack with padding bits set: they must be ignored.
  std::vector<uint8_t> dirty(packed);
  if (num_bits % 8 != 0)
    for (int64_t r = 0; r < rows; ++r)
      dirty[static_cast<size_t>(r * rb + rb - 1)] |= static_cast<uint8_t>(0xFFu << (num_bits % 8));
  std::vector<uint8_t> unpacked(nbits + kGuard, kGuardByte);
  blkit::cpu::unpack_bits(dirty.data(), unpacked.data(), rows, num_bits);
  const std::vector<uint8_t> dirty_in(dirty.begin(), dirty.begin() + static_cast<std::ptrdiff_t>(npacked));
  const std::vector<uint8_t> expect_bits = naive_unpack(dirty_in, static_cast<size_t>(rows),
                                                      static_cast<size_t>(num_bits));
  bool ok = guard_ok(unpacked, nbits) && blkit_test::same_bytes(unpacked.data(), expect_bits.data(), nbits);
  for (size_t i = 0; ok && i < nbits; ++i) ok = unpacked[i] == (bits_in[i] != 0 ? 1 : 0);  // round trip
  if (!ok) {
    printf("FAIL unpack_bits rows=%lld num_bits=%lld mode=%d\n", (long long)rows, (long long)num_bits, mode);
    ++blkit_test::failures();
  }
}

// Every 8-bit pattern, each bit-byte drawn from several nonzero values.
void check_all_bytes() {
  const uint8_t ones[4] = {1, 0x80, 0xFF, 0x7F};
  std::vector<uint8_t> bits(256 * 8);
  for (int v = 0; v < 256; ++v)
    for (int k = 0; k < 8; ++k) bits[static_cast<size_t>(v * 8 + k)] = ((v >> k) & 1) ? ones[(v + k) % 4] : 0;
  std::vector<uint8_t> packed(256);
  blkit::cpu::pack_bits(bits.data(), packed.data(), 256, 8);
  std::vector<uint8_t> back(256 * 8);
  blkit::cpu::unpack_bits(packed.data(), back.data(), 256, 8);
  for (int v = 0; v < 256; ++v) {
    if (packed[static_cast<size_t>(v)] != v) {
      printf("FAIL pack_bits of byte pattern %d gave %d\n", v, packed[static_cast<size_t>(v)]);
      ++blkit_test::failures();
    }
    for (int k = 0; k < 8; ++k)
      if (back[static_cast<size_t>(v * 8 + k)] != ((v >> k) & 1)) {
        printf("FAIL unpack_bits of byte %d, bit %d\n", v, k);
        ++blkit_test::failures();
      }
  }
}

void check_uniform(uint64_t seed, uint64_t offset, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n) + 4, -1.0f);
  blkit::cpu::uniform(out.data(), n, seed, offset);
  for (int64_t i = 0; i < n; ++i) {
    const float expect = blkit::uniform_at(seed, offset + static_cast<uint64_t>(i));
    const float got = out[static_cast<size_t>(i)];
    if (memcmp(&got, &expect, sizeof(float)) != 0 || !(got >= 0.0f && got < 1.0f)) {
      printf("FAIL uniform seed=%llu offset=%llu i=%lld: %.9g vs %.9g\n", (unsigned long long)seed,
             (unsigned long long)offset, (long long)i, got, expect);
      ++blkit_test::failures();
      return;
    }
  }
  for (size_t i = static_cast<size_t>(n); i < out.size(); ++i)
    if (out[i] != -1.0f) {
      printf("FAIL uniform wrote past n=%lld\n", (long long)n);
      ++blkit_test::failures();
      return;
    }
}

}  // namespace

int main() {
  const int64_t widths[] = {1, 7, 8, 63, 64, 65, 130};
  const int64_t row_counts[] = {0, 1, 3};
  uint64_t seed = 1;
  for (int64_t nb : widths)
    for (int64_t rows : row_counts)
      for (int mode = 0; mode < 3; ++mode) check_case(rows, nb, mode, seed++);
  // Large enough to take the (possibly OpenMP-parallel) paths.
  check_case(1000, 264, 0, seed++);
  check_case(997, 261, 1, seed++);
  check_case(1, 1 << 20, 2, seed++);
  // Past the byte kernels' parallel thresholds (pack from 2M bits, unpack from 256K bits; bits.cpp).
  check_case(3000, 1000, 0, seed++);
  check_case(2100, 1001, 1, seed++);
  check_case(4096, 0, 0, seed++);
  check_all_bytes();

  blkit::cpu::pack_bits(nullptr, nullptr, 0, 64);  // empty inputs must not touch memory
  blkit::cpu::unpack_bits(nullptr, nullptr, 0, 65);
  blkit::cpu::uniform(nullptr, 0, 1, 2);

  check_uniform(0, 0, 1000);
  check_uniform(4294967303ULL, 0xFFFFFFFFULL - 100, 300);       // crosses 2**32
  check_uniform(12345, (3ULL << 32) - 5000, 100000);            // crosses 3 * 2**32, parallel path
  check_uniform(9223372036854775813ULL, 0xFFFFFFFFFFFFFFF0ULL, 40);  // wraps modulo 2**64
  // Offset arithmetic: uniform(offset)[i] == uniform(offset + i)[0] across the 2**32 boundary.
  {
    std::vector<float> a(64), b(1);
    const uint64_t base = (1ULL << 32) - 32;
    blkit::cpu::uniform(a.data(), 64, 77, base);
    for (int i = 0; i < 64; ++i) {
      blkit::cpu::uniform(b.data(), 1, 77, base + static_cast<uint64_t>(i));
      if (memcmp(&a[static_cast<size_t>(i)], &b[0], sizeof(float)) != 0) {
        printf("FAIL uniform offset shift at i=%d\n", i);
        ++blkit_test::failures();
      }
    }
  }

  return blkit_test::finish("test_bits");
}
