// Typed pack / unpack, XOR, popcount against naive loops, and cpu::uniform on every instruction set
// (counters across 2**32 and the 2**64 wrap), with 1 and 3 threads.
#include <math.h>

#include <string>
#include <vector>

#include "blkit/blkit.h"
#include "blkit/philox.h"
#include "test_util.h"

namespace {

namespace cpu = blkit::cpu;
using blkit_test::Guarded;
using blkit_test::Rng;

const char* g_config = "";

// A dense value of `dtype` that is zero (0 / -0.0) or nonzero (several forms), written at element i.
void put(std::vector<uint8_t>& buf, cpu::DType dtype, int64_t i, bool one, uint64_t r) {
  const size_t size = static_cast<size_t>(cpu::dtype_size(dtype));
  uint8_t* p = buf.data() + static_cast<size_t>(i) * size;
  switch (dtype) {
    case cpu::kByte: {
      const uint8_t v = one ? static_cast<uint8_t>(1 + r % 255) : 0;
      *p = v;
      break;
    }
    case cpu::kInt16: {
      const int16_t v = one ? static_cast<int16_t>((r & 1) ? -1 : 256) : 0;
      memcpy(p, &v, 2);
      break;
    }
    case cpu::kInt32: {
      const int32_t v = one ? static_cast<int32_t>((r & 1) ? -5 : 1 << 20) : 0;
      memcpy(p, &v, 4);
      break;
    }
    case cpu::kInt64: {
      const int64_t v = one ? static_cast<int64_t>((r & 1) ? -1 : int64_t{1} << 40) : 0;
      memcpy(p, &v, 8);
      break;
    }
    case cpu::kFloat16:
    case cpu::kBFloat16: {
      // nonzero: 1.0, -2.0, the smallest subnormal; zero: +0 or -0
      const uint16_t ones16[3] = {static_cast<uint16_t>(dtype == cpu::kFloat16 ? 0x3C00 : 0x3F80),
                                  static_cast<uint16_t>(dtype == cpu::kFloat16 ? 0xC000 : 0xC000), 0x0001};
      const uint16_t v = one ? ones16[r % 3] : static_cast<uint16_t>((r & 1) ? 0x8000 : 0);
      memcpy(p, &v, 2);
      break;
    }
    case cpu::kFloat32: {
      const float v = one ? ((r & 1) ? -0.5f : 1e-40f) : ((r & 2) ? -0.0f : 0.0f);
      memcpy(p, &v, 4);
      break;
    }
    case cpu::kFloat64: {
      const double v = one ? ((r & 1) ? NAN : 2.0) : ((r & 2) ? -0.0 : 0.0);
      memcpy(p, &v, 8);
      break;
    }
  }
}

const cpu::DType kAll[] = {cpu::kByte,     cpu::kInt16,    cpu::kInt32,   cpu::kInt64,
                           cpu::kFloat16,  cpu::kBFloat16, cpu::kFloat32, cpu::kFloat64};

void check_pack_typed(int64_t rows, int64_t c, Rng& rng) {
  const int64_t n = rows * c;
  std::vector<uint8_t> bits(static_cast<size_t>(n));
  for (auto& b : bits) b = rng.next() & 1u;
  const std::vector<uint8_t> expect = blkit_test::naive_pack(bits.data(), rows, c);
  for (const cpu::DType dt : kAll) {
    std::vector<uint8_t> raw(static_cast<size_t>(n * cpu::dtype_size(dt)));
    for (int64_t i = 0; i < n; ++i) put(raw, dt, i, bits[static_cast<size_t>(i)] != 0, rng.next());
    Guarded<uint8_t> packed(expect.size());
    cpu::pack_bits_typed(raw.data(), dt, packed.data(), rows, c);
    BLKIT_CHECK(packed.guard_ok() && blkit_test::same_bytes(packed.data(), expect.data(), expect.size()),
                "[%s] pack_bits_typed dtype=%d rows=%lld C=%lld", g_config, dt, (long long)rows, (long long)c);
    // unpack into the dtype: 0 / 1 values
    Guarded<uint8_t> out(raw.size());
    std::vector<uint8_t> dirty(expect);
    if (c % 8)  // padding bits set: ignored
      for (int64_t r = 0; r < rows; ++r) dirty[static_cast<size_t>(r * blkit_test::packed_width(c) + (c - 1) / 8)] |= 0x80;
    cpu::unpack_bits_typed(dirty.data(), out.data(), dt, rows, c);
    bool ok = out.guard_ok();
    for (int64_t i = 0; ok && i < n; ++i) {
      const bool one = bits[static_cast<size_t>(i)] != 0;
      const uint8_t* p = out.data() + static_cast<size_t>(i * cpu::dtype_size(dt));
      double v = 0;
      switch (dt) {
        case cpu::kByte: v = *p; break;
        case cpu::kInt16: { int16_t t; memcpy(&t, p, 2); v = t; break; }
        case cpu::kInt32: { int32_t t; memcpy(&t, p, 4); v = t; break; }
        case cpu::kInt64: { int64_t t; memcpy(&t, p, 8); v = static_cast<double>(t); break; }
        case cpu::kFloat16: { uint16_t t; memcpy(&t, p, 2); v = t == 0x3C00 ? 1 : t == 0 ? 0 : -1; break; }
        case cpu::kBFloat16: { uint16_t t; memcpy(&t, p, 2); v = t == 0x3F80 ? 1 : t == 0 ? 0 : -1; break; }
        case cpu::kFloat32: { float t; memcpy(&t, p, 4); v = signbit(t) ? -1 : t; break; }
        case cpu::kFloat64: { double t; memcpy(&t, p, 8); v = signbit(t) ? -1 : t; break; }
      }
      ok = v == (one ? 1.0 : 0.0);
    }
    BLKIT_CHECK(ok, "[%s] unpack_bits_typed dtype=%d rows=%lld C=%lld", g_config, dt, (long long)rows, (long long)c);
  }
}

void check_xor(int64_t n, Rng& rng) {
  std::vector<uint8_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    a[static_cast<size_t>(i)] = static_cast<uint8_t>(rng.next());
    b[static_cast<size_t>(i)] = static_cast<uint8_t>(rng.next());
  }
  Guarded<uint8_t> out(static_cast<size_t>(n));
  cpu::xor_bytes(a.data(), b.data(), out.data(), n);
  bool ok = out.guard_ok();
  for (int64_t i = 0; ok && i < n; ++i) ok = out[static_cast<size_t>(i)] == (a[static_cast<size_t>(i)] ^ b[static_cast<size_t>(i)]);
  BLKIT_CHECK(ok, "[%s] xor_bytes n=%lld", g_config, (long long)n);
  for (const cpu::DType dt : kAll) {
    std::vector<uint8_t> ra(static_cast<size_t>(n * cpu::dtype_size(dt))), rb(ra.size());
    std::vector<uint8_t> ea(static_cast<size_t>(n)), eb(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      ea[static_cast<size_t>(i)] = rng.next() & 1u;
      eb[static_cast<size_t>(i)] = rng.next() & 1u;
      put(ra, dt, i, ea[static_cast<size_t>(i)] != 0, rng.next());
      put(rb, dt, i, eb[static_cast<size_t>(i)] != 0, rng.next());
    }
    Guarded<uint8_t> o(static_cast<size_t>(n));
    cpu::xor_nonzero(ra.data(), rb.data(), dt, o.data(), n);
    ok = o.guard_ok();
    for (int64_t i = 0; ok && i < n; ++i) ok = o[static_cast<size_t>(i)] == (ea[static_cast<size_t>(i)] ^ eb[static_cast<size_t>(i)]);
    BLKIT_CHECK(ok, "[%s] xor_nonzero dtype=%d n=%lld", g_config, dt, (long long)n);
  }
}

void check_popcount(int64_t outer, int64_t dim, int64_t inner, Rng& rng) {
  const int64_t n = outer * dim * inner;
  std::vector<uint8_t> p(static_cast<size_t>(n));
  for (auto& v : p) v = static_cast<uint8_t>(rng.next());
  std::vector<int64_t> expect(static_cast<size_t>(outer * inner), 0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t d = 0; d < dim; ++d)
      for (int64_t i = 0; i < inner; ++i) {
        const uint8_t b = p[static_cast<size_t>((o * dim + d) * inner + i)];
        int bits = 0;
        for (int k = 0; k < 8; ++k) bits += (b >> k) & 1;
        expect[static_cast<size_t>(o * inner + i)] += bits;
      }
  Guarded<int64_t> out(expect.size());
  cpu::popcount(p.data(), out.data(), outer, dim, inner);
  BLKIT_CHECK(out.guard_ok() && blkit_test::same_bytes(out.data(), expect.data(), expect.size() * 8),
              "[%s] popcount %lld x %lld x %lld", g_config, (long long)outer, (long long)dim, (long long)inner);
}

void check_uniform(uint64_t seed, uint64_t offset, int64_t n) {
  Guarded<float> out(static_cast<size_t>(n));
  cpu::uniform(out.data(), n, seed, offset);
  bool ok = out.guard_ok();
  for (int64_t i = 0; ok && i < n; ++i) {
    const float e = blkit::uniform_at(seed, offset + static_cast<uint64_t>(i));
    ok = blkit_test::bits_of(out[static_cast<size_t>(i)]) == blkit_test::bits_of(e);
  }
  BLKIT_CHECK(ok, "[%s] uniform seed=%llu offset=%llu n=%lld", g_config, (unsigned long long)seed,
              (unsigned long long)offset, (long long)n);
}

void run_all() {
  Rng rng(7);
  for (const int64_t c : {1, 7, 8, 63, 64, 65, 130, 600})
    for (const int64_t rows : {0, 1, 3, 70}) check_pack_typed(rows, c, rng);
  check_pack_typed(300, 64, rng);  // parallel path
  for (const int64_t n : {0, 1, 15, 16, 17, 1000, 100003, (1 << 21) + 5}) check_xor(n, rng);  // last: parallel
  check_popcount(3, 0, 1, rng);
  check_popcount(0, 5, 1, rng);
  check_popcount(1, 1, 1, rng);
  check_popcount(5, 7, 1, rng);
  check_popcount(4, 300, 1, rng);  // several 31-word blocks
  check_popcount(4, 7, 9, rng);
  check_popcount(2, 3, 130, rng);
  check_popcount(9000, 9, 1, rng);
  check_popcount(1, 2, 0, rng);
  check_uniform(0, 0, 1000);
  check_uniform(4294967303ULL, 0xFFFFFFFFULL - 100, 300);
  check_uniform(12345, (3ULL << 32) - 5000, 100000);
  check_uniform(9223372036854775813ULL, 0xFFFFFFFFFFFFFFF0ULL, 40);
  for (int64_t n = 1; n <= 70; ++n) check_uniform(99, (1ULL << 32) - 33, n);  // every tail length
}

}  // namespace

int main() {
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    if (!cpu::set_isa(isa)) {
      printf("test_bitops: %s not supported here, skipped\n", isa);
      continue;
    }
    for (const int threads : {1, 3}) {
      cpu::set_num_threads(threads);
      const std::string config = std::string(isa) + "/" + std::to_string(threads);
      g_config = config.c_str();
      run_all();
    }
  }
  cpu::set_isa("auto");
  cpu::set_num_threads(0);
  return blkit_test::finish("test_bitops");
}
