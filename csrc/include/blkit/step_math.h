// Element-wise math of the sampling step and the training loss (DESIGN §1.3-1.4), float32.
//
// Shared by the CPU kernels (csrc/cpu) and, later, the CUDA kernels: every function is
// BLKIT_HOST_DEVICE inline, uses only +, -, *, /, fused multiply-adds (fmadd), comparisons, selects and
// bit casts (no other libm calls, no std::), so that the C++ compiler can vectorize loops over it and
// nvcc can compile it for the device. exp/log are polynomial approximations written here (max error
// ~2 ulp on the ranges used, checked by csrc/tests/test_step_math.cpp); they give the same bits on every
// backend that uses them, as long as the compiler does not contract other a*b+c into FMAs (CPU: no
// -ffp-contract=fast; CUDA: compile with --fmad=false or accept differences at the rounding level, which
// the sample_step contract allows). An explicit fmadd rounds once on every target (one instruction where
// the target has FMA, glibc's exact fmaf elsewhere), so it keeps the bits identical across instruction sets.
#pragma once

#include <stdint.h>
#include <string.h>

#include "blkit/philox.h"  // BLKIT_HOST_DEVICE

#if defined(__CUDACC__)
#define BLKIT_MATH_FN __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define BLKIT_MATH_FN BLKIT_HOST_DEVICE inline __attribute__((always_inline))
#else
#define BLKIT_MATH_FN BLKIT_HOST_DEVICE inline
#endif

namespace blkit {
namespace math {

// ---------------------------------------------------------------------------------------------
// Bit casts and low-precision conversions
// ---------------------------------------------------------------------------------------------
BLKIT_MATH_FN float float_from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof(f));
  return f;
}

BLKIT_MATH_FN uint32_t bits_from_float(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof(b));
  return b;
}

// IEEE binary16 -> float32, exact for every input (zeros, subnormals, inf, NaN payloads), branch-free.
BLKIT_MATH_FN float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t expo = (static_cast<uint32_t>(h) >> 10) & 0x1Fu;
  const uint32_t mant = static_cast<uint32_t>(h) & 0x3FFu;
  const uint32_t normal = ((expo + 112u) << 23) | (mant << 13);  // rebias 15 -> 127
  const uint32_t special = 0x7F800000u | (mant << 13);           // inf / NaN
  // zero and subnormal: mant * 2**-24, exact in float32 (mant < 2**10)
  const uint32_t tiny = bits_from_float(static_cast<float>(static_cast<int32_t>(mant)) * 5.9604644775390625e-8f);
  uint32_t mag = expo == 31u ? special : normal;
  mag = expo == 0u ? tiny : mag;
  return float_from_bits(sign | mag);
}

// bfloat16 -> float32 (the top half of a float32), exact.
BLKIT_MATH_FN float bfloat16_to_float(uint16_t b) { return float_from_bits(static_cast<uint32_t>(b) << 16); }

// a * b + c rounded once (IEEE fused multiply-add).
BLKIT_MATH_FN float fmadd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}

// ---------------------------------------------------------------------------------------------
// exp, log, sigmoid
// ---------------------------------------------------------------------------------------------
namespace detail {
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;            // 355/512: n * kLn2Hi is exact for |n| < 2**15
constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln 2 - kLn2Hi
constexpr float kRoundMagic = 12582912.0f;         // 1.5 * 2**23: (t + magic) - magic rounds t to an integer
constexpr float kExpMax = 88.3f;                   // exp(88.3) < FLT_MAX, n <= 127
constexpr float kExpMin = -87.3f;                  // exp(-87.3) > FLT_MIN, n >= -126
// Degree-7 Taylor polynomial of e**r (Horner, highest coefficient first): 1/7!, 1/6!, ..., 1/2, 1, 1.
constexpr float kExp7 = 1.98412698e-4f, kExp6 = 1.38888889e-3f, kExp5 = 8.33333333e-3f, kExp4 = 4.16666667e-2f,
                kExp3 = 1.66666667e-1f, kExp2 = 0.5f;
}  // namespace detail

// e**x in float32. x is clamped to [-87.3, 88.3] (results stay normal: exp(-87.3) ~ 1.2e-38,
// exp(88.3) ~ 2.2e38); NaN stays NaN. Range reduction x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor
// polynomial of e**r (truncation error < 6e-9 relative), times 2**n built in the exponent bits.
BLKIT_MATH_FN float exp_f32(float x) {
  x = x > detail::kExpMax ? detail::kExpMax : x;
  x = x < detail::kExpMin ? detail::kExpMin : x;
  // t = magic + n with n = round(x / ln2): the low mantissa bits of t hold n (no float->int conversion,
  // so NaN stays well-defined: it propagates through p).
  const float t = fmadd(x, detail::kLog2e, detail::kRoundMagic);
  const float n = t - detail::kRoundMagic;
  const uint32_t ni = bits_from_float(t) - bits_from_float(detail::kRoundMagic);  // n mod 2**32
  float r = fmadd(n, -detail::kLn2Hi, x);  // Cody-Waite: ln 2 in two parts
  r = fmadd(n, -detail::kLn2Lo, r);
  float p = fmadd(detail::kExp7, r, detail::kExp6);
  p = fmadd(p, r, detail::kExp5);
  p = fmadd(p, r, detail::kExp4);
  p = fmadd(p, r, detail::kExp3);
  p = fmadd(p, r, detail::kExp2);
  p = fmadd(p, r, 1.0f);
  p = fmadd(p, r, 1.0f);
  return p * float_from_bits((ni + 127u) << 23);  // p * 2**n
}

// log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] as 2 atanh(s), s = f / (2 + f), |s| <= 0.1716:
// 2s (1 + z/3 + z^2/5 + ... + z^5/11), z = s^2 (truncation error < 1e-10 relative).
BLKIT_MATH_FN float log1p_reduced(float f) {
  const float s = f / (2.0f + f);
  const float z = s * s;
  float p = 9.09090909e-2f;  // 1/11
  p = fmadd(p, z, 1.11111111e-1f);  // 1/9
  p = fmadd(p, z, 1.42857143e-1f);  // 1/7
  p = fmadd(p, z, 2.0e-1f);         // 1/5
  p = fmadd(p, z, 3.33333333e-1f);  // 1/3
  const float s2 = s + s;
  return s2 + s2 * (z * p);
}

// Natural log of a positive, normal, finite float (the loss only takes logs of values in [1e-6, 1]).
BLKIT_MATH_FN float log_f32(float v) {
  uint32_t b = bits_from_float(v);
  int32_t e = static_cast<int32_t>(b >> 23) - 127;
  uint32_t mb = (b & 0x007FFFFFu) | 0x3F800000u;  // mantissa m in [1, 2)
  const bool big = mb > 0x3FB504F3u;               // m > sqrt(2): use m / 2 and e + 1
  mb = big ? mb - 0x00800000u : mb;
  e = big ? e + 1 : e;
  const float f = float_from_bits(mb) - 1.0f;  // exact (Sterbenz), in [sqrt(1/2) - 1, sqrt(2) - 1]
  const float ef = static_cast<float>(e);
  return ef * detail::kLn2Hi + (ef * detail::kLn2Lo + log1p_reduced(f));
}

// log(1 + e) for e in [0, 1] (the softplus tail log1p(exp(-|l|))), accurate also for tiny e.
BLKIT_MATH_FN float log1p_unit(float e) {
  const bool big = e > 0.41421356f;              // 1 + e > sqrt(2): log1p(e) = ln2 + log1p((e - 1) / 2)
  const float f = big ? (e - 1.0f) * 0.5f : e;  // in [sqrt(1/2) - 1, sqrt(2) - 1]
  const float k = big ? 0.693147181f : 0.0f;
  return k + log1p_reduced(f);
}

// m**g for m in [1e-6, 1] and any real g, as exp(g log m).
BLKIT_MATH_FN float pow_unit(float m, float g) { return exp_f32(g * log_f32(m)); }

BLKIT_MATH_FN float sigmoid(float l) { return 1.0f / (1.0f + exp_f32(-l)); }

// ---------------------------------------------------------------------------------------------
// One reverse step (DESIGN §1.4). coef columns as in blkit/ops/_coefficients.py:
//   p_flip:     (a, b0, c, d, final)   f(s) = (a s + b0) / (c s + d) = P(x_{t'} != x_t)
//   not p_flip: (k', b', qh, ql, final)
// ---------------------------------------------------------------------------------------------
struct StepCoef {
  float c0, c1, c2, c3;
  bool final_step;  // t' = 0: threshold phat > 0.5
};

// Guided, tempered logit: l / tau, or (1 + g) (l / tau) - g (lu / tau) with one_plus_g = float(1 + g).
BLKIT_MATH_FN float guided_logit(float l, float lu, float tau, bool guided, float one_plus_g, float g) {
  const float a = l / tau;
  return guided ? one_plus_g * a - g * (lu / tau) : a;
}

// P(x_0 = 1) from s = sigmoid(l) and the current bit x (0 or 1).
BLKIT_MATH_FN float clean_probability(float s, bool x, bool p_flip) { return (p_flip && x) ? 1.0f - s : s; }

// P(x_{t'} = 1) for t' >= 1 from s and x.
BLKIT_MATH_FN float step_posterior(float s, bool x, const StepCoef& k, bool p_flip) {
  if (p_flip) {
    const float f = (k.c0 * s + k.c1) / (k.c2 * s + k.c3);
    return x ? 1.0f - f : f;
  }
  const float a1 = k.c0 * s + k.c1;
  const float a0 = k.c0 * (1.0f - s) + k.c1;
  const float q1 = x ? k.c2 : k.c3;
  const float q0 = x ? k.c3 : k.c2;
  const float n1 = a1 * q1;
  return n1 / (n1 + a0 * q0);
}

// The bit (u < pi) of a step t' >= 1 without divisions, from e = exp(-l) (so s = 1 / (1 + e)):
// numerator and denominator of pi are scaled by 1 + e = 1 / s (> 0), and u < n / d is tested as
// n - u d > 0 with one rounding (d > 0), so the sign is that of the exact n - u d for the float n and d.
// Agrees with u < pi except where u lies within float rounding of pi; it decides fewer draws differently
// from the float64 pi than u < step_posterior(sigmoid(l), ...) (checked in csrc/tests/test_step_math.cpp),
// which rounds s, 1 - s and pi.
BLKIT_MATH_FN bool step_sample(float e, bool x, float u, const StepCoef& k, bool p_flip) {
  if (p_flip) {
    const float num = fmadd(k.c1, e, k.c0 + k.c1);  // (a s + b0) / s = a + b0 (1 + e)
    const float den = fmadd(k.c3, e, k.c2 + k.c3);  // (c s + d) / s
    return fmadd(-u, den, x ? den - num : num) > 0.0f;
  }
  const float a1 = fmadd(k.c1, e, k.c0 + k.c1);  // (k' s + b') / s = k' + b' (1 + e)
  const float a0 = fmadd(k.c0 + k.c1, e, k.c1);  // (k' (1 - s) + b') / s = k' e + b' (1 + e)
  const float n1 = a1 * (x ? k.c2 : k.c3);
  const float n0 = a0 * (x ? k.c3 : k.c2);
  return fmadd(-u, n1 + n0, n1) > 0.0f;
}

// The output of posterior(): phat at the last step, pi otherwise.
BLKIT_MATH_FN float posterior_value(float s, bool x, const StepCoef& k, bool p_flip) {
  return k.final_step ? clean_probability(s, x, p_flip) : step_posterior(s, x, k, p_flip);
}

// The bit sample_step writes, from e = exp(-l): (u < pi), or (phat > 0.5) at the last step with phat from
// s = sigmoid(l) = 1 / (1 + e) exactly as posterior_value computes it.
BLKIT_MATH_FN bool step_bit(float e, bool x, float u, const StepCoef& k, bool p_flip) {
  return k.final_step ? clean_probability(1.0f / (1.0f + e), x, p_flip) > 0.5f : step_sample(e, x, u, k, p_flip);
}

// ---------------------------------------------------------------------------------------------
// Training loss (DESIGN §1.3), value and d/dl of one element, as the reference backend writes it
// (blkit/_backends/reference/ops.py: diffusion_loss and _aux_term).
// ---------------------------------------------------------------------------------------------
constexpr float kLossEps = 1e-6f;
constexpr float kLossOneMinusEps = static_cast<float>(1.0 - 1e-6);

// How m**gamma is evaluated (exactly for the common small integers).
enum GammaMode : int { kGammaZero = 0, kGammaOne = 1, kGammaTwo = 2, kGammaGeneral = 3 };

// Per-sample constants of the loss (one loss-coefficient row plus the class-balance weight).
// Flags are floats (0 or 1) so that vectorized selects on them have the width of the float math.
struct LossRow {
  float tw;        // time weight
  float alpha1;    // class weight where y = 1: 1 - w (balance) or 1
  float alpha0;    // class weight where y = 0: w (balance) or 1
  float aux_tw;    // aux_weight * tw
  float k_prev, b_prev;
  float q_hi, q_lo;  // keep + (1 - keep)/2 and (1 - keep)/2: q1 = x ? q_hi : q_lo, q0 = x ? q_lo : q_hi
  float first;       // 1 where t = 1: the predicted posterior is xhat itself
  float target00, target01, target10, target11;  // target[x][x0] = clamp(post(x0), 0, 1) (aux target)
};

// Posterior component 0 of normalize((k' [v, 1-v] + b') * [q1, q0]) and its derivative by v.
BLKIT_MATH_FN float aux_post(float v, float kp, float bp, float q1, float q0, float* dpost) {
  const float n1 = (kp * v + bp) * q1;
  const float n0 = (kp * (1.0f - v) + bp) * q0;
  const float total = n1 + n0 + kLossEps;
  if (dpost != nullptr) *dpost = (kp * q1 * total - n1 * kp * (q1 - q0)) / (total * total);
  return n1 / total;
}

BLKIT_MATH_FN float clamp_unit_target(float t) {
  t = t < 0.0f ? 0.0f : t;
  return t > 1.0f ? 1.0f : t;
}

// Fills the per-sample row: coef = (tw, k[t-1], b[t-1], keep[t], first), w = mean of y over the sample.
BLKIT_MATH_FN LossRow make_loss_row(const float* coef, bool balance, float w, float aux_weight) {
  LossRow r;
  r.tw = coef[0];
  r.k_prev = coef[1];
  r.b_prev = coef[2];
  const float keep = coef[3];
  r.first = coef[4] != 0.0f ? 1.0f : 0.0f;
  r.alpha1 = balance ? 1.0f - w : 1.0f;
  r.alpha0 = balance ? w : 1.0f;
  r.aux_tw = aux_weight * r.tw;
  const float half = (1.0f - keep) / 2.0f;
  r.q_hi = keep * 1.0f + half;
  r.q_lo = keep * 0.0f + half;
  // x = 0: q1 = q_lo, q0 = q_hi; x = 1: q1 = q_hi, q0 = q_lo
  r.target00 = clamp_unit_target(aux_post(0.0f, r.k_prev, r.b_prev, r.q_lo, r.q_hi, nullptr));
  r.target01 = clamp_unit_target(aux_post(1.0f, r.k_prev, r.b_prev, r.q_lo, r.q_hi, nullptr));
  r.target10 = clamp_unit_target(aux_post(0.0f, r.k_prev, r.b_prev, r.q_hi, r.q_lo, nullptr));
  r.target11 = clamp_unit_target(aux_post(1.0f, r.k_prev, r.b_prev, r.q_hi, r.q_lo, nullptr));
  return r;
}

// Element loss (before the reduction) and its derivative by the logit l. x, x0: the bits of x_t and x_0
// as 0.0f / 1.0f. GammaMode selects how m**gamma is computed; `gamma` is the exponent itself. Clamp
// derivatives are zero outside the clamp range: "inside" is tested as (clamped value == raw value).
template <int GammaMode, bool PFlip, bool Aux>
BLKIT_MATH_FN float loss_element(float l, float x, float x0, const LossRow& r, float gamma, float* grad) {
  const float y = PFlip ? x + x0 - 2.0f * (x * x0) : x0;  // x XOR x0 (exact on 0/1)
  // One exponential for both sigmoid and softplus: e = exp(-|l|) in (0, 1],
  // p = 1 / (1 + e) for l >= 0 and e / (1 + e) for l < 0, log(1 + exp(-|l|)) = log1p(e).
  const float abs_l = l < 0.0f ? -l : l;
  const float e = exp_f32(-abs_l);
  const float inv = 1.0f / (1.0f + e);
  const float p = l < 0.0f ? e * inv : inv;
  const float dp = p * (1.0f - p);
  float bce = (l > 0.0f ? l : 0.0f) - l * y + log1p_unit(e);
  float d = p - y;
  if (GammaMode != kGammaZero) {
    const float m_raw = 1.0f - (p * y + (1.0f - p) * (1.0f - y));
    float m = m_raw < kLossEps ? kLossEps : m_raw;
    m = m > kLossOneMinusEps ? kLossOneMinusEps : m;
    const float dm = m == m_raw ? -(2.0f * y - 1.0f) * dp : 0.0f;
    float mg, mg1;  // m**gamma, m**(gamma - 1)
    if (GammaMode == kGammaOne) {
      mg = m;
      mg1 = 1.0f;
    } else if (GammaMode == kGammaTwo) {
      mg = m * m;
      mg1 = m;
    } else {
      mg = pow_unit(m, gamma);
      mg1 = mg / m;
    }
    d = d * mg + bce * gamma * mg1 * dm;
    bce = bce * mg;
  }
  const float alpha = y != 0.0f ? r.alpha1 : r.alpha0;
  float loss = r.tw * (alpha * bce);
  float g = r.tw * (alpha * d);
  if (Aux) {
    const bool flip = PFlip && x != 0.0f;
    const float xhat = flip ? 1.0f - p : p;
    const float dxhat = flip ? -dp : dp;
    const float q1 = x != 0.0f ? r.q_hi : r.q_lo;
    const float q0 = x != 0.0f ? r.q_lo : r.q_hi;
    float dpost;
    const float post = aux_post(xhat, r.k_prev, r.b_prev, q1, q0, &dpost);
    const float pred = r.first != 0.0f ? xhat : post;
    const float dpred = (r.first != 0.0f ? 1.0f : dpost) * dxhat;
    const float t0 = x != 0.0f ? r.target10 : r.target00;
    const float t1 = x != 0.0f ? r.target11 : r.target01;
    const float target = x0 != 0.0f ? t1 : t0;
    float pc = pred < kLossEps ? kLossEps : pred;
    pc = pc > kLossOneMinusEps ? kLossOneMinusEps : pc;
    const float aux = -(target * log_f32(pc) + (1.0f - target) * log_f32(1.0f - pc));
    const float d_aux = pc == pred ? (pc - target) / (pc * (1.0f - pc)) * dpred : 0.0f;
    loss = loss + r.aux_tw * aux;
    g = g + r.aux_tw * d_aux;
  }
  *grad = g;
  return loss;
}

}  // namespace math
}  // namespace blkit
