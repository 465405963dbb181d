// Philox4x32-10 counter-based RNG and Triton-compatible uniform float conversion.
//
// Header-only; usable from host C++ and from CUDA device code. Bit-exact with
// Triton's tl.rand(seed, offset): the counter is (lo32(offset), hi32(offset), 0, 0),
// the key is (lo32(seed), hi32(seed)), and the first output word is mapped to
// [0, 1) by uniform_from_word.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define BLKIT_HOST_DEVICE __host__ __device__
#else
#define BLKIT_HOST_DEVICE
#endif

namespace blkit {

struct Philox4 {
  uint32_t w[4];
};

namespace philox_detail {

constexpr uint32_t kRoundA = 0xD2511F53u;  // multiplier of counter word 0
constexpr uint32_t kRoundB = 0xCD9E8D57u;  // multiplier of counter word 2
constexpr uint32_t kKeyA = 0x9E3779B9u;    // Weyl increment of key word 0
constexpr uint32_t kKeyB = 0xBB67AE85u;    // Weyl increment of key word 1

// hi:lo = a * b as a full 64-bit product.
BLKIT_HOST_DEVICE inline void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

}  // namespace philox_detail

// Ten rounds of Philox4x32 on counter (c0, c1, c2, c3) with key (k0, k1).
BLKIT_HOST_DEVICE inline Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                               uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi_b, lo_b, hi_a, lo_a;
    philox_detail::mulhilo32(philox_detail::kRoundB, c2, hi_b, lo_b);
    philox_detail::mulhilo32(philox_detail::kRoundA, c0, hi_a, lo_a);
    const uint32_t n0 = hi_b ^ c1 ^ k0;
    const uint32_t n2 = hi_a ^ c3 ^ k1;
    c0 = n0;
    c1 = lo_b;
    c2 = n2;
    c3 = lo_a;
    k0 += philox_detail::kKeyA;  // unsigned: wraps modulo 2**32
    k1 += philox_detail::kKeyB;
  }
  Philox4 r;
  r.w[0] = c0;
  r.w[1] = c1;
  r.w[2] = c2;
  r.w[3] = c3;
  return r;
}

// Triton's uint_to_uniform_float for 32-bit words: reinterpret as int32, fold negatives
// with bitwise not, scale by 4.6566127342e-10f (float32). Result in [0, 1).
BLKIT_HOST_DEVICE inline float uniform_from_word(uint32_t w) {
  // As int32, v < 0 exactly when the top bit is set, and then ~v has the bit pattern ~w,
  // which is below 2**31; so the folded value is computed in unsigned arithmetic.
  const uint32_t folded = (w & 0x80000000u) ? ~w : w;
  return static_cast<float>(static_cast<int32_t>(folded)) * 4.6566127342e-10f;
}

// tl.rand(seed, counter) for one element.
BLKIT_HOST_DEVICE inline float uniform_at(uint64_t seed, uint64_t counter) {
  const Philox4 r = philox4x32_10(static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u,
                                  0u, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return uniform_from_word(r.w[0]);
}

}  // namespace blkit
