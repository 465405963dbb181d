// The tiled CPU kernels (bernoulli, binary_quantize, q_sample, posterior, sample_step, diffusion_loss)
// against scalar references written from blkit/philox.h and blkit/step_math.h, on every instruction set
// this CPU supports and with 1 and 3 threads: bits identical, losses identical across ISAs and thread
// counts. Edge cases: C = 1, 7, 63, 64, 65, 130 and rows longer than a tile; empty tensors; counters
// that cross 2**32 and wrap at 2**64; per-sample steps; half / bfloat16 inputs.
#include <math.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "blkit/blkit.h"
#include "blkit/philox.h"
#include "blkit/step_math.h"
#include "test_util.h"

namespace {

using blkit_test::Guarded;
using blkit_test::Rng;
namespace cpu = blkit::cpu;
namespace math = blkit::math;

const char* g_config = "";  // "isa/threads" of the current run, for messages

struct Shape {
  int64_t batch, per_batch_rows, cols;
  int64_t rows() const { return batch * per_batch_rows; }
  int64_t numel() const { return rows() * cols; }
};

const Shape kShapes[] = {
    {1, 1, 1},   {3, 5, 1},  {2, 3, 7},   {4, 2, 63},   {2, 3, 64},    {3, 2, 65},    {2, 2, 130},
    {2, 1, 600}, {3, 2, 1100}, {5, 1, 8}, {4, 64, 65},  {2, 40, 130},  {64, 16, 64},  {1, 3, 513},
};

const uint64_t kOffsets[] = {0, (uint64_t{1} << 32) - 37, 0xFFFFFFFFFFFFFF80ULL};

// Half / bfloat16 bit patterns of values in [0, 1] (patterns of positive values are ordered like the values).
uint16_t random_half_unit(Rng& r) { return static_cast<uint16_t>(r.next() % 0x3C01u); }
uint16_t random_bf16_unit(Rng& r) { return static_cast<uint16_t>(r.next() % 0x3F81u); }

uint16_t half_of(float f) {  // float -> half bits for |f| < 65504 (round toward zero; inputs of the tests only)
  const uint32_t b = blkit_test::bits_of(f);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int32_t e = static_cast<int32_t>((b >> 23) & 0xFF) - 127 + 15;
  if (e <= 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | ((b >> 13) & 0x3FFu));
}

// ------------------------------------------------------------------------------------------------
// bernoulli / binary_quantize
// ------------------------------------------------------------------------------------------------
void check_bernoulli(const Shape& s, cpu::DType dtype, uint64_t seed, uint64_t offset, Rng& rng) {
  const int64_t n = s.numel();
  std::vector<float> pf(static_cast<size_t>(n));
  std::vector<uint8_t> raw(static_cast<size_t>(n) * 8);
  for (int64_t i = 0; i < n; ++i) {
    float p;
    switch (dtype) {
      case cpu::kFloat16: {
        const uint16_t h = random_half_unit(rng);
        memcpy(raw.data() + 2 * i, &h, 2);
        p = math::half_to_float(h);
        break;
      }
      case cpu::kBFloat16: {
        const uint16_t h = random_bf16_unit(rng);
        memcpy(raw.data() + 2 * i, &h, 2);
        p = math::bfloat16_to_float(h);
        break;
      }
      case cpu::kFloat64: {
        const double d = rng.uniform();
        memcpy(raw.data() + 8 * i, &d, 8);
        p = static_cast<float>(d);
        break;
      }
      default: {
        p = static_cast<float>(rng.uniform());
        if (i % 11 == 0) p = 0.0f;
        if (i % 13 == 0) p = 1.0f;
        memcpy(raw.data() + 4 * i, &p, 4);
        break;
      }
    }
    pf[static_cast<size_t>(i)] = p;
  }
  std::vector<uint8_t> expect(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    expect[static_cast<size_t>(i)] = blkit::uniform_at(seed, offset + static_cast<uint64_t>(i)) < pf[static_cast<size_t>(i)];

  Guarded<uint8_t> dense(static_cast<size_t>(n));
  cpu::bernoulli(raw.data(), dtype, dense.data(), s.rows(), s.cols, false, seed, offset);
  BLKIT_CHECK(dense.guard_ok() && blkit_test::same_bytes(dense.data(), expect.data(), static_cast<size_t>(n)),
              "[%s] bernoulli dense dtype=%d C=%lld offset=%llu", g_config, dtype, (long long)s.cols,
              (unsigned long long)offset);

  const std::vector<uint8_t> expect_packed = blkit_test::naive_pack(expect.data(), s.rows(), s.cols);
  Guarded<uint8_t> packed(expect_packed.size());
  cpu::bernoulli(raw.data(), dtype, packed.data(), s.rows(), s.cols, true, seed, offset);
  BLKIT_CHECK(packed.guard_ok() && blkit_test::same_bytes(packed.data(), expect_packed.data(), expect_packed.size()),
              "[%s] bernoulli packed dtype=%d C=%lld", g_config, dtype, (long long)s.cols);

  // binary_quantize: same draws, written as 0 / 1 in the probabilities' dtype; deterministic: p > 0.5.
  for (const bool det : {false, true}) {
    const size_t esize = static_cast<size_t>(cpu::dtype_size(dtype));
    Guarded<uint8_t> z(static_cast<size_t>(n) * esize);
    cpu::binary_quantize(raw.data(), dtype, z.data(), n, det, seed, offset);
    bool ok = z.guard_ok();
    for (int64_t i = 0; ok && i < n; ++i) {
      const bool one = det ? pf[static_cast<size_t>(i)] > 0.5f : expect[static_cast<size_t>(i)] != 0;
      const uint8_t* e = z.data() + static_cast<size_t>(i) * esize;
      switch (dtype) {
        case cpu::kFloat32: {
          float v;
          memcpy(&v, e, 4);
          ok = v == (one ? 1.0f : 0.0f) && !signbit(v);
          break;
        }
        case cpu::kFloat64: {
          double v;
          memcpy(&v, e, 8);
          ok = v == (one ? 1.0 : 0.0) && !signbit(v);
          break;
        }
        default: {
          uint16_t v;
          memcpy(&v, e, 2);
          ok = v == (one ? (dtype == cpu::kFloat16 ? 0x3C00u : 0x3F80u) : 0u);
          break;
        }
      }
    }
    BLKIT_CHECK(ok, "[%s] binary_quantize dtype=%d deterministic=%d C=%lld", g_config, dtype, det ? 1 : 0,
                (long long)s.cols);
  }
}

// ------------------------------------------------------------------------------------------------
// q_sample
// ------------------------------------------------------------------------------------------------
void check_q_sample(const Shape& s, bool per_sample, cpu::DType x_dtype, uint64_t seed, uint64_t offset, Rng& rng) {
  const int64_t n = s.numel();
  std::vector<uint8_t> x0(static_cast<size_t>(n));  // 0/1
  std::vector<uint8_t> raw(static_cast<size_t>(n) * 8, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t r = rng.next();
    x0[static_cast<size_t>(i)] = r & 1u;
    switch (x_dtype) {
      case cpu::kByte:
        raw[static_cast<size_t>(i)] = (r & 1u) ? static_cast<uint8_t>(1u + (r >> 8) % 255u) : 0;
        break;
      case cpu::kFloat32: {
        const float v = (r & 1u) ? -0.5f : ((r & 2u) ? -0.0f : 0.0f);
        memcpy(raw.data() + 4 * i, &v, 4);
        break;
      }
      default: {  // kInt64
        const int64_t v = (r & 1u) ? -7 : 0;
        memcpy(raw.data() + 8 * i, &v, 8);
        break;
      }
    }
  }
  const int64_t coef_rows = per_sample ? s.batch : 1;
  std::vector<float> coef(static_cast<size_t>(2 * coef_rows));
  for (int64_t b = 0; b < coef_rows; ++b) {
    const float k = static_cast<float>(rng.uniform());
    coef[static_cast<size_t>(2 * b)] = (1.0f - k) / 2.0f;
    coef[static_cast<size_t>(2 * b + 1)] = k + (1.0f - k) / 2.0f;
  }
  const int64_t per = n / s.batch;
  std::vector<uint8_t> ex_t(static_cast<size_t>(n)), ex_r(static_cast<size_t>(n));
  std::vector<int64_t> ex_f(static_cast<size_t>(s.batch), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / per;
    const float* c = coef.data() + 2 * (per_sample ? b : 0);
    const float u = blkit::uniform_at(seed, offset + static_cast<uint64_t>(i));
    const uint8_t z = u < (x0[static_cast<size_t>(i)] ? c[1] : c[0]);
    ex_t[static_cast<size_t>(i)] = z;
    ex_r[static_cast<size_t>(i)] = z ^ x0[static_cast<size_t>(i)];
    ex_f[static_cast<size_t>(b)] += ex_r[static_cast<size_t>(i)];
  }
  for (const bool packed : {false, true}) {
    const size_t out_n = packed ? static_cast<size_t>(s.rows() * blkit_test::packed_width(s.cols)) : static_cast<size_t>(n);
    Guarded<uint8_t> xt(out_n), res(out_n);
    Guarded<int64_t> flips(static_cast<size_t>(s.batch));
    cpu::QSampleArgs a;
    a.x0 = raw.data();
    a.x0_dtype = x_dtype;
    a.coef = coef.data();
    a.coef_rows = coef_rows;
    a.batch = s.batch;
    a.rows = s.rows();
    a.num_bits = s.cols;
    a.packed = packed;
    a.seed = seed;
    a.offset = offset;
    cpu::q_sample(a, xt.data(), res.data(), flips.data());
    std::vector<uint8_t> et = ex_t, er = ex_r;
    if (packed) {
      et = blkit_test::naive_pack(ex_t.data(), s.rows(), s.cols);
      er = blkit_test::naive_pack(ex_r.data(), s.rows(), s.cols);
    }
    BLKIT_CHECK(xt.guard_ok() && res.guard_ok() && flips.guard_ok() &&
                    blkit_test::same_bytes(xt.data(), et.data(), out_n) &&
                    blkit_test::same_bytes(res.data(), er.data(), out_n) &&
                    blkit_test::same_bytes(flips.data(), ex_f.data(), ex_f.size() * 8),
                "[%s] q_sample C=%lld packed=%d per_sample=%d dtype=%d", g_config, (long long)s.cols, packed ? 1 : 0,
                per_sample ? 1 : 0, x_dtype);
  }
}

// ------------------------------------------------------------------------------------------------
// posterior / sample_step
// ------------------------------------------------------------------------------------------------
struct StepCase {
  bool p_flip, guided, masked, packed, per_sample;
  cpu::DType logits_dtype;
  float temperature, guidance;
};

void check_step(const Shape& s, const StepCase& k, uint64_t seed, uint64_t offset, Rng& rng) {
  const int64_t n = s.numel();
  std::vector<float> lf(static_cast<size_t>(n)), uf(static_cast<size_t>(n));
  std::vector<uint8_t> lraw(static_cast<size_t>(n) * 4), uraw(static_cast<size_t>(n) * 4);
  auto fill = [&](std::vector<float>& f, std::vector<uint8_t>& raw, float scale) {
    for (int64_t i = 0; i < n; ++i) {
      float v = rng.normal() * scale;
      if (i % 17 == 3) v = 0.0f;
      if (i % 29 == 5) v = 1e-9f;
      // around and far beyond exp's clamp (|x| = 87.3 / 88.3), finite in every logits dtype
      if (i % 31 == 7) v = (i % 2 ? 1.0f : -1.0f) * static_cast<float>(80 + i % 41);
      if (i % 53 == 9) v = (i % 2 ? 1.0f : -1.0f) * 1e4f;
      if (k.logits_dtype == cpu::kFloat32) {
        memcpy(raw.data() + 4 * i, &v, 4);
      } else if (k.logits_dtype == cpu::kFloat16) {
        const uint16_t h = half_of(v);
        memcpy(raw.data() + 2 * i, &h, 2);
        v = math::half_to_float(h);
      } else {
        const uint16_t h = static_cast<uint16_t>(blkit_test::bits_of(v) >> 16);
        memcpy(raw.data() + 2 * i, &h, 2);
        v = math::bfloat16_to_float(h);
      }
      f[static_cast<size_t>(i)] = v;
    }
  };
  fill(lf, lraw, 3.0f);
  fill(uf, uraw, 2.0f);
  std::vector<uint8_t> x(static_cast<size_t>(n)), mask(static_cast<size_t>(n)), known(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] = rng.next() & 1u;
    mask[static_cast<size_t>(i)] = (rng.next() % 3u) == 0 ? 7 : 0;
    known[static_cast<size_t>(i)] = rng.next() & 1u ? 255 : 0;
  }
  // coef rows: per-sample tables, some of them final (t' = 0)
  const int64_t coef_rows = k.per_sample ? s.batch : 1;
  std::vector<float> coef(static_cast<size_t>(5 * coef_rows));
  for (int64_t b = 0; b < coef_rows; ++b) {
    const double kp = 0.05 + 0.9 * rng.uniform(), bp = (1 - kp) / 2, big_k = 0.05 + 0.9 * rng.uniform();
    const double qh = (1 + big_k) / 2, ql = (1 - big_k) / 2;
    float* c = coef.data() + 5 * b;
    if (k.p_flip) {
      c[0] = static_cast<float>(kp * ql);
      c[1] = static_cast<float>(bp * ql);
      c[2] = static_cast<float>(kp * (ql - qh));
      c[3] = static_cast<float>(bp + kp * qh);
    } else {
      c[0] = static_cast<float>(kp);
      c[1] = static_cast<float>(bp);
      c[2] = static_cast<float>(qh);
      c[3] = static_cast<float>(ql);
    }
    c[4] = (coef_rows > 1 && b % 3 == 2) || (coef_rows == 1 && rng.next() % 4 == 0) ? 1.0f : 0.0f;
  }
  const float one_plus_g = static_cast<float>(1.0 + static_cast<double>(k.guidance));
  const int64_t per = n / s.batch;
  std::vector<float> ex_pi(static_cast<size_t>(n));
  std::vector<uint8_t> ex_z(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float* c = coef.data() + 5 * (k.per_sample ? i / per : 0);
    math::StepCoef sc;
    sc.c0 = c[0];
    sc.c1 = c[1];
    sc.c2 = c[2];
    sc.c3 = c[3];
    sc.final_step = c[4] != 0.0f;
    const float sg = math::sigmoid(math::guided_logit(lf[static_cast<size_t>(i)], uf[static_cast<size_t>(i)],
                                                      k.temperature, k.guided, one_plus_g, k.guidance));
    const bool xb = x[static_cast<size_t>(i)] != 0;
    ex_pi[static_cast<size_t>(i)] = math::posterior_value(sg, xb, sc, k.p_flip);
    const float u = blkit::uniform_at(seed, offset + static_cast<uint64_t>(i));
    const float e = math::exp_f32(-math::guided_logit(lf[static_cast<size_t>(i)], uf[static_cast<size_t>(i)],
                                                      k.temperature, k.guided, one_plus_g, k.guidance));
    uint8_t z = math::step_bit(e, xb, u, sc, k.p_flip);
    if (k.masked && mask[static_cast<size_t>(i)]) z = known[static_cast<size_t>(i)] != 0;
    ex_z[static_cast<size_t>(i)] = z;
  }
  const std::vector<uint8_t> x_packed = blkit_test::naive_pack(x.data(), s.rows(), s.cols);
  cpu::StepArgs a;
  a.logits = lraw.data();
  a.logits_dtype = k.logits_dtype;
  a.uncond_logits = k.guided ? uraw.data() : nullptr;
  a.uncond_dtype = k.logits_dtype;
  a.guidance_scale = k.guidance;
  a.temperature = k.temperature;
  a.x_t = k.packed ? x_packed.data() : x.data();
  a.x_dtype = cpu::kByte;
  a.packed = k.packed;
  a.p_flip = k.p_flip;
  a.coef = coef.data();
  a.coef_rows = coef_rows;
  a.mask = k.masked ? mask.data() : nullptr;
  a.known = k.masked ? known.data() : nullptr;
  a.batch = s.batch;
  a.rows = s.rows();
  a.num_bits = s.cols;
  a.seed = seed;
  a.offset = offset;

  Guarded<float> pi(static_cast<size_t>(n));
  cpu::posterior(a, pi.data());
  BLKIT_CHECK(pi.guard_ok() && blkit_test::same_floats(pi.data(), ex_pi.data(), static_cast<size_t>(n)),
              "[%s] posterior C=%lld p_flip=%d guided=%d packed=%d dtype=%d", g_config, (long long)s.cols,
              k.p_flip ? 1 : 0, k.guided ? 1 : 0, k.packed ? 1 : 0, k.logits_dtype);

  const std::vector<uint8_t> ez = k.packed ? blkit_test::naive_pack(ex_z.data(), s.rows(), s.cols) : ex_z;
  Guarded<uint8_t> z(ez.size());
  cpu::sample_step(a, z.data());
  BLKIT_CHECK(z.guard_ok() && blkit_test::same_bytes(z.data(), ez.data(), ez.size()),
              "[%s] sample_step C=%lld p_flip=%d guided=%d masked=%d packed=%d per_sample=%d dtype=%d offset=%llu",
              g_config, (long long)s.cols, k.p_flip ? 1 : 0, k.guided ? 1 : 0, k.masked ? 1 : 0, k.packed ? 1 : 0,
              k.per_sample ? 1 : 0, k.logits_dtype, (unsigned long long)offset);
}

// ------------------------------------------------------------------------------------------------
// diffusion_loss
// ------------------------------------------------------------------------------------------------
struct LossCase {
  bool p_flip, balance, per_sample;
  float gamma, aux;
  cpu::Reduction reduction;
};

template <int G, bool P, bool A>
float element(float l, float x, float x0, const math::LossRow& r, float gamma, float* d) {
  return math::loss_element<G, P, A>(l, x, x0, r, gamma, d);
}

float naive_element(const LossCase& c, float l, float x, float x0, const math::LossRow& r, float* d) {
  const int g = c.gamma == 0.0f ? 0 : c.gamma == 1.0f ? 1 : c.gamma == 2.0f ? 2 : 3;
  const bool a = c.aux > 0.0f;
#define BLKIT_CASE(G)                                                                     \
  if (g == G) {                                                                           \
    if (c.p_flip) return a ? element<G, true, true>(l, x, x0, r, c.gamma, d)              \
                           : element<G, true, false>(l, x, x0, r, c.gamma, d);            \
    return a ? element<G, false, true>(l, x, x0, r, c.gamma, d)                           \
             : element<G, false, false>(l, x, x0, r, c.gamma, d);                         \
  }
  BLKIT_CASE(0)
  BLKIT_CASE(1)
  BLKIT_CASE(2)
  BLKIT_CASE(3)
#undef BLKIT_CASE
  return 0.0f;
}

struct LossResult {
  std::vector<float> loss, grad;
};

LossResult run_loss(const Shape& s, const LossCase& c, const std::vector<float>& l, const std::vector<uint8_t>& x,
                    const std::vector<uint8_t>& x0, const std::vector<float>& coef) {
  const int64_t n = s.numel();
  cpu::LossArgs a;
  a.logits = l.data();
  a.x_t = x.data();
  a.x0 = x0.data();
  a.coef = coef.data();
  a.coef_rows = c.per_sample ? s.batch : 1;
  a.p_flip = c.p_flip;
  a.balance = c.balance;
  a.gamma = c.gamma;
  a.aux_weight = c.aux;
  a.reduction = c.reduction;
  a.batch = s.batch;
  a.n = n;
  const size_t nl = c.reduction == cpu::kNone ? static_cast<size_t>(n) : 1;
  Guarded<float> loss(nl), grad(static_cast<size_t>(n));
  cpu::diffusion_loss(a, loss.data(), grad.data());
  BLKIT_CHECK(loss.guard_ok() && grad.guard_ok(), "[%s] diffusion_loss wrote past its outputs", g_config);
  LossResult r;
  r.loss.assign(loss.data(), loss.data() + nl);
  r.grad.assign(grad.data(), grad.data() + n);
  return r;
}

void check_loss(const Shape& s, const LossCase& c, Rng& rng, std::vector<LossResult>* results) {
  const int64_t n = s.numel();
  std::vector<float> l(static_cast<size_t>(n));
  std::vector<uint8_t> x(static_cast<size_t>(n)), x0(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    l[static_cast<size_t>(i)] = rng.normal() * 2.0f;
    if (i % 31 == 7) l[static_cast<size_t>(i)] = 40.0f;  // saturated sigmoid: clamps of m and pred
    x[static_cast<size_t>(i)] = rng.next() & 1u ? 200 : 0;  // any nonzero byte is a 1
    x0[static_cast<size_t>(i)] = (rng.next() % 5u) == 0 ? 3 : 0;
  }
  const int64_t coef_rows = c.per_sample ? s.batch : 1;
  std::vector<float> coef(static_cast<size_t>(5 * coef_rows));
  for (int64_t b = 0; b < coef_rows; ++b) {
    const float keep = static_cast<float>(0.5 + 0.5 * rng.uniform());
    const float kp = static_cast<float>(rng.uniform());
    float* row = coef.data() + 5 * b;
    row[0] = static_cast<float>(0.2 + 0.8 * rng.uniform());
    row[1] = kp;
    row[2] = (1.0f - kp) / 2.0f;
    row[3] = keep;
    row[4] = b % 4 == 1 ? 1.0f : 0.0f;
  }
  // scalar reference
  const int64_t per = n / s.batch;
  std::vector<int64_t> counts(static_cast<size_t>(s.batch), 0);
  for (int64_t i = 0; i < n; ++i) {
    const bool xb = x[static_cast<size_t>(i)] != 0, x0b = x0[static_cast<size_t>(i)] != 0;
    counts[static_cast<size_t>(i / per)] += c.p_flip ? (xb != x0b) : x0b;
  }
  const float scale = c.reduction == cpu::kMean ? static_cast<float>(1.0 / static_cast<double>(n)) : 1.0f;
  std::vector<float> el(static_cast<size_t>(n)), gr(static_cast<size_t>(n));
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / per;
    const float w = static_cast<float>(static_cast<double>(counts[static_cast<size_t>(b)]) / static_cast<double>(per));
    const math::LossRow row = math::make_loss_row(coef.data() + 5 * (c.per_sample ? b : 0), c.balance, w, c.aux);
    float d;
    el[static_cast<size_t>(i)] = naive_element(c, l[static_cast<size_t>(i)], x[static_cast<size_t>(i)] ? 1.0f : 0.0f,
                                               x0[static_cast<size_t>(i)] ? 1.0f : 0.0f, row, &d);
    gr[static_cast<size_t>(i)] = d * scale;
    total += el[static_cast<size_t>(i)];
  }
  const LossResult got = run_loss(s, c, l, x, x0, coef);
  BLKIT_CHECK(blkit_test::same_floats(got.grad.data(), gr.data(), gr.size()),
              "[%s] diffusion_loss grad C=%lld p_flip=%d balance=%d gamma=%g aux=%g red=%d", g_config,
              (long long)s.cols, c.p_flip ? 1 : 0, c.balance ? 1 : 0, c.gamma, c.aux, c.reduction);
  if (c.reduction == cpu::kNone) {
    BLKIT_CHECK(blkit_test::same_floats(got.loss.data(), el.data(), el.size()), "[%s] diffusion_loss none C=%lld",
                g_config, (long long)s.cols);
  } else {
    const double want = c.reduction == cpu::kMean ? total / static_cast<double>(n) : total;
    BLKIT_CHECK(fabs(got.loss[0] - want) <= 1e-6 * fabs(want) + 1e-30, "[%s] diffusion_loss value %.9g vs %.9g",
                g_config, got.loss[0], want);
  }
  results->push_back(got);
}

// ------------------------------------------------------------------------------------------------
// empty inputs
// ------------------------------------------------------------------------------------------------
void check_empty() {
  float coef[5] = {1, 1, 0, 1, 0};
  cpu::bernoulli(nullptr, cpu::kFloat32, nullptr, 0, 64, true, 1, 2);
  cpu::bernoulli(nullptr, cpu::kFloat32, nullptr, 5, 0, false, 1, 2);
  cpu::binary_quantize(nullptr, cpu::kFloat16, nullptr, 0, false, 1, 2);
  {  // q_sample with samples but no elements: counts are still written (zeros)
    Guarded<int64_t> flips(3, 0xFF);
    cpu::QSampleArgs a;
    a.coef = coef;
    a.batch = 3;
    a.rows = 0;
    a.num_bits = 10;
    cpu::q_sample(a, nullptr, nullptr, flips.data());
    BLKIT_CHECK(flips.guard_ok(0xFF) && flips[0] == 0 && flips[1] == 0 && flips[2] == 0, "q_sample empty counts");
    a.batch = 0;
    cpu::q_sample(a, nullptr, nullptr, nullptr);
  }
  {
    cpu::StepArgs a;
    a.coef = coef;
    a.rows = 0;
    a.num_bits = 10;
    cpu::posterior(a, nullptr);
    cpu::sample_step(a, nullptr);
    a.packed = true;
    cpu::sample_step(a, nullptr);
  }
  {
    cpu::LossArgs a;
    a.coef = coef;
    a.n = 0;
    float v = -1.0f;
    a.reduction = cpu::kSum;
    cpu::diffusion_loss(a, &v, nullptr);
    BLKIT_CHECK(v == 0.0f, "diffusion_loss sum of nothing = %g", v);
    a.reduction = cpu::kMean;
    cpu::diffusion_loss(a, &v, nullptr);
    BLKIT_CHECK(v != v, "diffusion_loss mean of nothing = %g (expected NaN)", v);
    a.reduction = cpu::kNone;
    cpu::diffusion_loss(a, nullptr, nullptr);
  }
  // bad arguments throw
  bool threw = false;
  try {
    cpu::bernoulli(nullptr, cpu::kFloat32, nullptr, -1, 8, false, 0, 0);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  BLKIT_CHECK(threw, "negative rows must throw");
  threw = false;
  try {
    cpu::QSampleArgs a;
    float c2[2] = {0, 1};
    uint8_t buf[6] = {0};
    int64_t f[2];
    a.x0 = buf;
    a.coef = c2;
    a.coef_rows = 3;  // neither 1 nor batch
    a.batch = 2;
    a.rows = 2;
    a.num_bits = 3;
    cpu::q_sample(a, buf, buf, f);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  BLKIT_CHECK(threw, "coef_rows not in {1, batch} must throw");
}

void run_all(std::vector<std::vector<LossResult>>* loss_runs) {
  Rng rng(2024);
  std::vector<LossResult> losses;
  int si = 0;
  for (const Shape& s : kShapes) {
    const uint64_t seed = 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(si + 1);
    const uint64_t offset = kOffsets[si % 3];
    for (const cpu::DType dt : {cpu::kFloat32, cpu::kFloat16, cpu::kBFloat16, cpu::kFloat64})
      check_bernoulli(s, dt, seed, offset, rng);
    for (const cpu::DType dt : {cpu::kByte, cpu::kFloat32, cpu::kInt64})
      check_q_sample(s, si % 2 == 0, dt, seed + 1, offset, rng);
    for (int variant = 0; variant < 8; ++variant) {
      StepCase k;
      k.p_flip = variant % 2 == 0;
      k.guided = variant % 3 == 0;
      k.masked = variant % 4 == 1;
      k.packed = variant >= 4;
      k.per_sample = variant % 3 != 1;
      k.logits_dtype = variant % 3 == 2 ? cpu::kFloat16 : variant % 5 == 3 ? cpu::kBFloat16 : cpu::kFloat32;
      k.temperature = variant % 2 ? 0.7f : 1.0f;
      k.guidance = k.guided ? 1.5f : 0.0f;
      check_step(s, k, seed + 2, offset + static_cast<uint64_t>(variant), rng);
    }
    const float gammas[] = {0.0f, 1.0f, 2.0f, 0.5f};
    for (int variant = 0; variant < 8; ++variant) {
      LossCase c;
      c.p_flip = variant % 2 == 0;
      c.balance = variant % 3 != 2;
      c.per_sample = variant % 4 != 3;
      c.gamma = gammas[variant % 4];
      c.aux = variant >= 4 ? 0.1f : 0.0f;
      c.reduction = static_cast<cpu::Reduction>(variant % 3);
      check_loss(s, c, rng, &losses);
    }
    ++si;
  }
  check_empty();
  loss_runs->push_back(losses);
}

}  // namespace

int main() {
  std::vector<std::vector<LossResult>> loss_runs;
  std::vector<std::string> configs;
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    if (!cpu::set_isa(isa)) {
      printf("test_kernels: %s not supported here, skipped\n", isa);
      continue;
    }
    for (const int threads : {1, 3}) {
      cpu::set_num_threads(threads);
      const std::string config = std::string(isa) + "/" + std::to_string(threads) + " thread(s)";
      g_config = config.c_str();
      run_all(&loss_runs);
      configs.push_back(config);
    }
  }
  // Loss values (sums included) are identical on every instruction set and thread count.
  for (size_t r = 1; r < loss_runs.size(); ++r) {
    bool same = loss_runs[r].size() == loss_runs[0].size();
    for (size_t i = 0; same && i < loss_runs[r].size(); ++i) {
      same = loss_runs[r][i].loss.size() == loss_runs[0][i].loss.size() &&
             blkit_test::same_floats(loss_runs[r][i].loss.data(), loss_runs[0][i].loss.data(),
                                     loss_runs[0][i].loss.size());
    }
    BLKIT_CHECK(same, "diffusion_loss values differ between %s and %s", configs[0].c_str(), configs[r].c_str());
  }
  cpu::set_isa("auto");
  cpu::set_num_threads(0);
  printf("test_kernels: kernels in use: %s\n", cpu::isa());
  return blkit_test::finish("test_kernels");
}
