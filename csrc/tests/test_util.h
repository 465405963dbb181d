// Small helpers shared by the C++ tests (plain main() programs run by ctest).
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

namespace blkit_test {

inline int& failures() {
  static int count = 0;
  return count;
}

#define BLKIT_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) {                                               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                \
      printf(__VA_ARGS__);                                       \
      printf("\n");                                              \
      ++blkit_test::failures();                                  \
    }                                                            \
  } while (0)

inline int finish(const char* name) {
  if (failures() != 0) {
    printf("%s: %d failure(s)\n", name, failures());
    return 1;
  }
  printf("%s: all passed\n", name);
  return 0;
}

// Deterministic generator (xorshift64*), independent of <random>'s distributions.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  float normal() {  // sum of uniforms, roughly normal (mean 0, sd 1)
    double acc = 0.0;
    for (int i = 0; i < 12; ++i) acc += uniform();
    return static_cast<float>(acc - 6.0);
  }
};

inline uint32_t bits_of(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof(b));
  return b;
}

inline bool same_floats(const float* a, const float* b, size_t n) { return n == 0 || memcmp(a, b, n * 4) == 0; }
inline bool same_bytes(const void* a, const void* b, size_t n) { return n == 0 || memcmp(a, b, n) == 0; }

// A buffer with guard bytes after the payload, to catch writes past the end (and unwritten elements:
// the payload starts filled with `fill`).
template <class T>
struct Guarded {
  static constexpr size_t kGuard = 64;
  std::vector<uint8_t> raw;
  size_t n;
  Guarded(size_t n_, uint8_t fill = 0xA5) : raw(n_ * sizeof(T) + kGuard, fill), n(n_) {}
  T* data() { return reinterpret_cast<T*>(raw.data()); }
  const T* data() const { return reinterpret_cast<const T*>(raw.data()); }
  T& operator[](size_t i) { return data()[i]; }
  bool guard_ok(uint8_t fill = 0xA5) const {
    for (size_t i = n * sizeof(T); i < raw.size(); ++i)
      if (raw[i] != fill) return false;
    return true;
  }
};

inline int64_t packed_width(int64_t c) { return (c + 7) / 8; }

inline std::vector<uint8_t> naive_pack(const uint8_t* bits, int64_t rows, int64_t c) {
  const int64_t w = packed_width(c);
  std::vector<uint8_t> out(static_cast<size_t>(rows * w), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c; ++k)
      if (bits[r * c + k]) out[static_cast<size_t>(r * w + k / 8)] |= static_cast<uint8_t>(1u << (k % 8));
  return out;
}

}  // namespace blkit_test
