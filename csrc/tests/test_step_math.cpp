// blkit/step_math.h: half / bfloat16 conversion (exhaustive), exp / log / sigmoid accuracy against double
// libm, the closed-form step against the float64 posterior, and the analytic loss gradient against a
// central difference of the element loss.
#include <math.h>

#include "blkit/step_math.h"
#include "test_util.h"

namespace {

namespace math = blkit::math;

double ulp_error(float got, double want) {
  const float wf = static_cast<float>(want);
  if (wf == 0.0f) return got == 0.0f ? 0.0 : 1e9;
  const double ulp = static_cast<double>(nextafterf(fabsf(wf), INFINITY)) - fabs(static_cast<double>(wf));
  return fabs(static_cast<double>(got) - want) / ulp;
}

// IEEE binary16 decoded with ldexp: the independent oracle of half_to_float.
double half_oracle(uint16_t h) {
  const int sign = (h >> 15) & 1, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 0) v = ldexp(m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

void check_conversions() {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = math::half_to_float(static_cast<uint16_t>(h));
    const double want = half_oracle(static_cast<uint16_t>(h));
    const bool ok = isnan(want) ? isnan(got) : (static_cast<double>(got) == want && signbit(got) == signbit(want));
    if (!ok && bad++ < 5) printf("half %04x -> %.10g, expected %.10g\n", h, got, want);
  }
  BLKIT_CHECK(bad == 0, "half_to_float: %d of 65536 patterns wrong", bad);
  bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = math::bfloat16_to_float(static_cast<uint16_t>(h));
    if (blkit_test::bits_of(got) != (h << 16) && bad++ < 5) printf("bfloat16 %04x wrong\n", h);
  }
  BLKIT_CHECK(bad == 0, "bfloat16_to_float: %d of 65536 patterns wrong", bad);
  // NaN payloads stay NaN, quiet bit kept
  BLKIT_CHECK(isnan(math::half_to_float(0x7E01)) && isnan(math::half_to_float(0xFD00)), "half NaN");
}

void check_elementary() {
  double worst = 0.0;
  float at = 0.0f;
  for (float x = -87.0f; x < 88.0f; x += 1.37e-3f) {
    const double e = ulp_error(math::exp_f32(x), exp(static_cast<double>(x)));
    if (e > worst) worst = e, at = x;
  }
  BLKIT_CHECK(worst <= 2.0, "exp_f32: %.2f ulp at %g", worst, at);
  BLKIT_CHECK(math::exp_f32(0.0f) == 1.0f && math::exp_f32(-1e-9f) == 1.0f, "exp_f32 at 0");
  BLKIT_CHECK(math::exp_f32(1000.0f) > 1e38f && math::exp_f32(1000.0f) < INFINITY, "exp_f32 clamps large x");
  BLKIT_CHECK(math::exp_f32(-1000.0f) > 0.0f && math::exp_f32(-1000.0f) < 1.3e-38f, "exp_f32 clamps small x");
  BLKIT_CHECK(isnan(math::exp_f32(NAN)), "exp_f32(NaN)");

  worst = 0.0;
  for (float v = 1e-7f; v < 8.0f; v *= 1.0000123f) {
    const double e = ulp_error(math::log_f32(v), log(static_cast<double>(v)));
    if (e > worst) worst = e, at = v;
  }
  BLKIT_CHECK(worst <= 3.0, "log_f32: %.2f ulp at %g", worst, at);

  worst = 0.0;
  for (float v = 1e-30f; v <= 1.0f; v *= 1.0000123f) {
    const double e = ulp_error(math::log1p_unit(v), log1p(static_cast<double>(v)));
    if (e > worst) worst = e, at = v;
  }
  BLKIT_CHECK(worst <= 3.0, "log1p_unit: %.2f ulp at %g", worst, at);

  double abs_worst = 0.0;
  for (float l = -40.0f; l < 40.0f; l += 7.3e-4f) {
    const double want = 1.0 / (1.0 + exp(-static_cast<double>(l)));
    abs_worst = fmax(abs_worst, fabs(math::sigmoid(l) - want));
  }
  BLKIT_CHECK(abs_worst <= 1.2e-7, "sigmoid: max abs error %.3g", abs_worst);
  // The last-step tie of DESIGN §1.4: sigmoid of tiny logits is exactly 0.5.
  BLKIT_CHECK(math::sigmoid(1e-9f) == 0.5f && math::sigmoid(-1e-9f) == 0.5f && math::sigmoid(0.0f) == 0.5f,
              "sigmoid(tiny) must round to 0.5");
  BLKIT_CHECK(math::sigmoid(100.0f) == 1.0f && math::sigmoid(-100.0f) < 1e-37f, "sigmoid saturation");
}

// The p_flip closed form and the x0 form both match the float64 posterior of DESIGN §1.4.
void check_step() {
  double worst = 0.0;
  for (int t = 2; t <= 64; t += 7) {
    for (int tp = 1; tp < t; tp += 3) {
      const double kt = 1.0 - t / 64.0, ktp = 1.0 - tp / 64.0;  // linear schedule
      const double bp = (1 - ktp) / 2, big_k = kt / ktp, qh = (1 + big_k) / 2, ql = (1 - big_k) / 2;
      math::StepCoef flip{static_cast<float>(ktp * ql), static_cast<float>(bp * ql),
                          static_cast<float>(ktp * (ql - qh)), static_cast<float>(bp + ktp * qh), false};
      math::StepCoef direct{static_cast<float>(ktp), static_cast<float>(bp), static_cast<float>(qh),
                            static_cast<float>(ql), false};
      for (float l = -8.0f; l <= 8.0f; l += 0.37f) {
        const float s = math::sigmoid(l);
        for (int x = 0; x < 2; ++x) {
          const double sd = 1.0 / (1.0 + exp(-static_cast<double>(l)));
          const double phat = x ? 1 - sd : sd;
          const double a1 = ktp * phat + bp, a0 = ktp * (1 - phat) + bp;
          const double q1 = big_k * x + (1 - big_k) / 2, q0 = big_k * (1 - x) + (1 - big_k) / 2;
          const double want = a1 * q1 / (a1 * q1 + a0 * q0);
          worst = fmax(worst, fabs(math::step_posterior(s, x != 0, flip, true) - want));
          // x0 parameterisation: phat = s
          const double a1d = ktp * sd + bp, a0d = ktp * (1 - sd) + bp;
          const double want_d = a1d * q1 / (a1d * q1 + a0d * q0);
          worst = fmax(worst, fabs(math::step_posterior(s, x != 0, direct, false) - want_d));
        }
      }
    }
  }
  BLKIT_CHECK(worst <= 2e-6, "step_posterior: max abs error %.3g against float64", worst);
  math::StepCoef last{0, 0, 0, 0, true};
  // e = exp(-l) = 1: s = 0.5
  BLKIT_CHECK(!math::step_bit(1.0f, false, 0.0f, last, true) && !math::step_bit(1.0f, true, 0.0f, last, true),
              "last step with phat = 0.5 gives 0 for both states");
  BLKIT_CHECK(math::step_bit(math::exp_f32(-3.0f), false, 0.0f, last, true) &&
                  !math::step_bit(math::exp_f32(-3.0f), true, 0.0f, last, true),
              "last step thresholds phat");
}

// The division-free sampling test u * den < num against u < pi with pi in float64 (from the same float32
// coefficients): it decides differently only near ties, no farther from pi than twice the largest
// distance at which u < step_posterior(sigmoid(l), ...) (the reference's float32 form) errs, and not more
// often than that form.
void check_step_sample() {
  blkit_test::Rng rng(5);
  int64_t wrong_fast = 0, wrong_div = 0, total = 0;
  double far_fast = 0.0, far_div = 0.0;
  for (int trial = 0; trial < 200; ++trial) {
    const double ktp = 0.02 + 0.96 * rng.uniform(), bp = (1 - ktp) / 2, big_k = 0.02 + 0.96 * rng.uniform();
    const double qh = (1 + big_k) / 2, ql = (1 - big_k) / 2;
    const math::StepCoef flip{static_cast<float>(ktp * ql), static_cast<float>(bp * ql),
                              static_cast<float>(ktp * (ql - qh)), static_cast<float>(bp + ktp * qh), false};
    const math::StepCoef direct{static_cast<float>(ktp), static_cast<float>(bp), static_cast<float>(qh),
                                static_cast<float>(ql), false};
    for (int i = 0; i < 2000; ++i) {
      const float l = rng.normal() * (i % 7 == 0 ? 40.0f : 4.0f);
      const bool x = rng.next() & 1u;
      const float e = math::exp_f32(-l);
      const float s = math::sigmoid(l);
      const double sd = 1.0 / (1.0 + exp(-static_cast<double>(l)));
      for (const bool p_flip : {true, false}) {
        const math::StepCoef& k = p_flip ? flip : direct;
        double pi;
        if (p_flip) {
          const double f = (static_cast<double>(k.c0) * sd + k.c1) / (static_cast<double>(k.c2) * sd + k.c3);
          pi = x ? 1.0 - f : f;
        } else {
          const double a1 = k.c0 * sd + k.c1, a0 = k.c0 * (1.0 - sd) + k.c1;
          const double q1 = x ? k.c2 : k.c3, q0 = x ? k.c3 : k.c2;
          pi = a1 * q1 / (a1 * q1 + a0 * q0);
        }
        // u near pi (the hard cases) or uniform
        float u = (i % 2) ? static_cast<float>(rng.uniform()) : static_cast<float>(pi + (rng.uniform() - 0.5) * 1e-5);
        u = u < 0.0f ? 0.0f : (u >= 1.0f ? 0.99999994f : u);
        ++total;
        const bool want = u < pi;
        if (math::step_sample(e, x, u, k, p_flip) != want) {
          ++wrong_fast;
          far_fast = fmax(far_fast, fabs(u - pi));
        }
        if ((u < math::step_posterior(s, x, k, p_flip)) != want) {
          ++wrong_div;
          far_div = fmax(far_div, fabs(u - pi));
        }
      }
    }
  }
  BLKIT_CHECK(far_fast <= 2.0 * far_div, "step_sample errs %.3g from pi, the float32 reference form %.3g", far_fast,
              far_div);
  BLKIT_CHECK(wrong_fast <= wrong_div, "step_sample errs more often than the float32 reference form: %lld vs %lld",
              (long long)wrong_fast, (long long)wrong_div);
  printf("step_sample: %lld of %lld draws (near pi) decided unlike float64, at most %.3g from pi; "
         "float32 reference form: %lld, at most %.3g\n",
         (long long)wrong_fast, (long long)total, far_fast, (long long)wrong_div, far_div);
}

// d loss / d l of the element loss against a central difference of the same function (in float,
// step h relative to the scale of l), for every option.
void check_loss_gradient() {
  const float coef[5] = {0.8f, 0.6f, 0.2f, 0.9f, 0.0f};
  const float coef_first[5] = {1.0f, 1.0f, 0.0f, 0.95f, 1.0f};
  int checked = 0;
  for (int variant = 0; variant < 32; ++variant) {
    const bool p_flip = variant & 1, aux = variant & 2, first = variant & 4;
    const float gamma = (variant >> 3) == 0 ? 0.0f : (variant >> 3) == 1 ? 1.0f : (variant >> 3) == 2 ? 2.0f : 0.7f;
    const math::LossRow row = math::make_loss_row(first ? coef_first : coef, true, 0.3f, aux ? 0.1f : 0.0f);
    for (float l = -5.0f; l <= 5.0f; l += 0.61f) {
      for (int xi = 0; xi < 4; ++xi) {
        const float x = static_cast<float>(xi & 1), x0 = static_cast<float>(xi >> 1);
        auto f = [&](float v, float* d) -> float {
          const int g = gamma == 0.0f ? 0 : gamma == 1.0f ? 1 : gamma == 2.0f ? 2 : 3;
#define BLKIT_E(G)                                                                          \
  if (g == G) {                                                                             \
    if (p_flip) return aux ? math::loss_element<G, true, true>(v, x, x0, row, gamma, d)     \
                           : math::loss_element<G, true, false>(v, x, x0, row, gamma, d);   \
    return aux ? math::loss_element<G, false, true>(v, x, x0, row, gamma, d)                \
               : math::loss_element<G, false, false>(v, x, x0, row, gamma, d);              \
  }
          BLKIT_E(0)
          BLKIT_E(1)
          BLKIT_E(2)
          BLKIT_E(3)
#undef BLKIT_E
          return 0.0f;
        };
        float d, dummy;
        f(l, &d);
        const float h = 1e-2f;
        const double numeric = (static_cast<double>(f(l + h, &dummy)) - f(l - h, &dummy)) / (2.0 * h);
        BLKIT_CHECK(fabs(d - numeric) <= 2e-3 * (1.0 + fabs(numeric)),
                    "loss gradient p_flip=%d aux=%d first=%d gamma=%g l=%g x=%g x0=%g: %g vs numeric %g", p_flip,
                    aux, first, gamma, l, x, x0, d, numeric);
        ++checked;
      }
    }
  }
  BLKIT_CHECK(checked > 1000, "loss gradient checks ran");
}

}  // namespace

int main() {
  check_conversions();
  check_elementary();
  check_step();
  check_step_sample();
  check_loss_gradient();
  return blkit_test::finish("test_step_math");
}
