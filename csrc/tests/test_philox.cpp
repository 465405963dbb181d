// Known-answer tests for Philox4x32-10 and golden Triton-compatible uniforms.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "blkit/blkit.h"
#include "blkit/philox.h"

namespace {

int failures = 0;

void check_philox(const uint32_t c[4], const uint32_t k[2], const uint32_t expect[4], const char* name) {
  const blkit::Philox4 r = blkit::philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
  for (int i = 0; i < 4; ++i) {
    if (r.w[i] != expect[i]) {
      printf("FAIL philox %s: word %d = %08x, expected %08x\n", name, i, r.w[i], expect[i]);
      ++failures;
    }
  }
}

int32_t float_bits(float f) {
  int32_t b;
  memcpy(&b, &f, sizeof(b));
  return b;
}

void check_uniforms(uint64_t seed, uint64_t offset, const int32_t expect[8], const char* name) {
  float buf[8];
  blkit::cpu::uniform(buf, 8, seed, offset);
  for (int i = 0; i < 8; ++i) {
    const int32_t single = float_bits(blkit::uniform_at(seed, offset + static_cast<uint64_t>(i)));
    const int32_t batch = float_bits(buf[i]);
    if (single != expect[i] || batch != expect[i]) {
      printf("FAIL uniform %s[%d]: uniform_at bits %d, cpu::uniform bits %d, expected %d\n", name, i, single, batch,
             expect[i]);
      ++failures;
    }
  }
}

void check_word(uint32_t w, float expect) {
  const float got = blkit::uniform_from_word(w);
  if (float_bits(got) != float_bits(expect)) {
    printf("FAIL uniform_from_word(%08x) = %.9g, expected %.9g\n", w, got, expect);
    ++failures;
  }
}

}  // namespace

int main() {
  {
    const uint32_t c[4] = {0, 0, 0, 0};
    const uint32_t k[2] = {0, 0};
    const uint32_t e[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    check_philox(c, k, e, "zeros");
  }
  {
    const uint32_t c[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu};
    const uint32_t k[2] = {0xffffffffu, 0xffffffffu};
    const uint32_t e[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    check_philox(c, k, e, "ones");
  }
  {
    const int32_t e[8] = {1061965777, 1029924458, 1025463396, 1054456898,
                          1040585188, 1063686439, 1058185575, 1060018629};
    check_uniforms(0ULL, 0ULL, e, "seed0");
  }
  {
    const int32_t e[8] = {1061120401, 1061007513, 1055966105, 1050061323,
                          1061262528, 1025317811, 1061976773, 1057885080};
    check_uniforms(4294967303ULL, 4294967293ULL, e, "seed2^32+7");
  }
  {
    const int32_t e[8] = {1061206798, 1041338112, 1047554711, 1050189024,
                          1064215917, 1058768731, 1053204635, 1064849811};
    check_uniforms(9223372036854775813ULL, 123456789012ULL, e, "seed2^63+5");
  }
  // Edge words of the int32 fold: 0 and -1 map to 0; INT32_MAX and INT32_MIN to the largest value < 1.
  const float top = 2147483647.0f * 4.6566127342e-10f;
  check_word(0u, 0.0f);
  check_word(0xffffffffu, 0.0f);
  check_word(0x7fffffffu, top);
  check_word(0x80000000u, top);
  check_word(1u, 4.6566127342e-10f);
  check_word(0xfffffffeu, 4.6566127342e-10f);
  if (!(top < 1.0f)) {
    printf("FAIL largest uniform %.9g is not below 1\n", top);
    ++failures;
  }

  if (failures != 0) {
    printf("test_philox: %d failure(s)\n", failures);
    return 1;
  }
  printf("test_philox: all passed\n");
  return 0;
}
