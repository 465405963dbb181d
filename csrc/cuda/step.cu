// CUDA reverse step (DESIGN §1.4): posterior (float32 P(x_{t'} = 1), phat at the last step) and sample_step
// (x_{t'} = (u < pi), or (phat > 0.5) at the last step; dense uint8 or packed state; guidance, temperature,
// inpainting mask). The element math is blkit/step_math.h, shared with the CPU kernels (IEEE division, the
// header's own exp; no fast-math intrinsics): posterior = posterior_value(sigmoid(l)), sample_step =
// step_sample / step_bit on e = exp(-l) (the division-free decision u * den < num). Results agree with the CPU
// backend up to float32 rounding; FMA contraction by nvcc is the only source of difference.
#include "blkit/blkit.h"
#include "device.cuh"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

using namespace dev;
using detail::aligned16;

__device__ __forceinline__ math::StepCoef load_step_coef(const float* c) {
  math::StepCoef k;
  k.c0 = __ldg(c);
  k.c1 = __ldg(c + 1);
  k.c2 = __ldg(c + 2);
  k.c3 = __ldg(c + 3);
  k.final_step = __ldg(c + 4) != 0.0f;
  return k;
}

// Inputs of a step and the per-chunk preparation shared by posterior and sample_step.
struct StepCore {
  const void* logits;
  const void* uncond;
  const void* x;  // dense (x_dtype) or packed uint8 [rows, width]
  const float* coef;
  int logits_dtype, uncond_dtype, x_dtype;
  float tau, one_plus_g, g;
  int64_t coef_per;  // elements per coefficient row (numel when there is one row)
  bool per_sample_coef;
  int64_t channels, width;
  bool p_flip, guided, packed;

  // For elements [base, base + count): v[j] = the guided, tempered logit l, turned into s = sigmoid(l)
  // (posterior) or e = exp(-l) (sample_step: the division-free decision of step_math.h, with s = 1 / (1 + e)),
  // and the bits of x_t. temperature == 1 takes a branch where the divisions by 1 are folded away (x / 1 == x
  // exactly, so the values are those of the general path).
  template <bool kExp>
  __device__ __forceinline__ uint32_t prepare(int64_t base, int count, bool vec, float (&v)[kChunk],
                                              XIn xin = XIn{false, 0u}) const {
    load_floats(logits, logits_dtype, base, count, vec, v);
    if (guided) {
      float lu[kChunk];
      load_floats(uncond, uncond_dtype, base, count, vec, lu);
      if (tau == 1.0f) {
#pragma unroll
        for (int j = 0; j < kChunk; ++j) v[j] = math::guided_logit(v[j], lu[j], 1.0f, true, one_plus_g, g);
      } else {
#pragma unroll
        for (int j = 0; j < kChunk; ++j) v[j] = math::guided_logit(v[j], lu[j], tau, true, one_plus_g, g);
      }
    } else if (tau != 1.0f) {
#pragma unroll
      for (int j = 0; j < kChunk; ++j) v[j] = math::guided_logit(v[j], 0.0f, tau, false, 1.0f, 0.0f);
    }
#pragma unroll
    for (int j = 0; j < kChunk; ++j) v[j] = kExp ? math::exp_f32(-v[j]) : math::sigmoid(v[j]);
    if (xin.valid) return xin.bits;
    return packed ? load_packed_bits(static_cast<const uint8_t*>(x), channels, width, base, count, vec)
                  : load_bits<kChunk>(x, x_dtype, base, count, vec);
  }

  __device__ __forceinline__ const float* coef_row(int64_t sample) const {
    return coef + 5 * (per_sample_coef ? sample : 0);
  }
};

struct SampleStepOp {
  static constexpr bool kTwoOutputs = false;
  static constexpr int kMinBlocks = 2;
  static constexpr bool kPackedInput = true;  // with a packed output, x_t is packed (same layout)
  StepCore core;
  const void* mask;
  const void* known;
  int mask_dtype, known_dtype;
  bool masked;
  const int64_t* rng;
  Rng r;

  __device__ void begin() { r = read_rng(rng); }
  __device__ void end() {}
  __device__ const uint8_t* packed_input() const { return static_cast<const uint8_t*>(core.x); }
  __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn xin, uint32_t*) const {
    float e[kChunk];  // exp(-l)
    const uint32_t x = core.prepare<true>(base, count, vec, e, xin);
    Cursor cur;
    cur.init(base, core.coef_per);
    math::StepCoef k = load_step_coef(core.coef_row(cur.sample));
    uint32_t z = 0;
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      if (j < count) {
        const int64_t i = base + j;
        if (cur.advance(i)) k = load_step_coef(core.coef_row(cur.sample));
        const bool xb = ((x >> j) & 1u) != 0;
        // (u < pi) without divisions, or (phat > 0.5) at the last step (no draw needed there)
        const bool bit = k.final_step ? math::step_bit(e[j], xb, 0.0f, k, core.p_flip)
                                      : math::step_sample(e[j], xb, uniform(r, i), k, core.p_flip);
        z |= static_cast<uint32_t>(bit) << j;
      }
    }
    if (masked) {
      const uint32_t m = load_bits<kChunk>(mask, mask_dtype, base, count, vec);
      const uint32_t kn = load_bits<kChunk>(known, known_dtype, base, count, vec);
      z = (z & ~m) | (kn & m);
    }
    return z;
  }
};

__global__ void __launch_bounds__(256, 2) posterior_kernel(StepCore core, float* out, int64_t n, bool vec) {
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    float s[kChunk];  // sigmoid(l)
    const uint32_t x = core.prepare<false>(base, count, v, s);
    Cursor cur;
    cur.init(base, core.coef_per);
    math::StepCoef k = load_step_coef(core.coef_row(cur.sample));
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      if (j < count) {
        if (cur.advance(base + j)) k = load_step_coef(core.coef_row(cur.sample));
        s[j] = math::posterior_value(s[j], ((x >> j) & 1u) != 0, k, core.p_flip);
      }
    }
    store_floats(out, base, count, v, s);
  });
}

void check_float_dtype(DType dtype, const char* what, const char* fn) {
  if (dtype == cpu::kFloat32 || dtype == cpu::kFloat16 || dtype == cpu::kBFloat16) return;
  throw std::invalid_argument(std::string("cuda ") + fn + ": " + what + " must be float32, float16 or bfloat16");
}

StepCore make_core(const StepArgs& a, const char* fn) {
  detail::check_shape(a.rows, a.num_bits, fn);
  detail::check_nonnegative(a.batch, "batch", fn);
  check_float_dtype(a.logits_dtype, "logits", fn);
  if (a.uncond_logits != nullptr) check_float_dtype(a.uncond_dtype, "uncond_logits", fn);
  if (!a.packed) (void)cpu::dtype_size(a.x_dtype);
  if (!(a.temperature > 0.0f)) throw std::invalid_argument(std::string("cuda ") + fn + ": temperature must be > 0");
  const int64_t n = a.rows * a.num_bits;
  if (a.batch <= 0 || n % a.batch != 0) {
    throw std::invalid_argument(std::string("cuda ") + fn + ": batch must be positive and divide the element count");
  }
  if (a.coef == nullptr || !(a.coef_rows == 1 || a.coef_rows == a.batch)) {
    throw std::invalid_argument(std::string("cuda ") + fn + ": coef must have 1 or batch rows");
  }
  StepCore c{};
  c.logits = a.logits;
  c.uncond = a.uncond_logits;
  c.x = a.x_t;
  c.coef = a.coef;
  c.logits_dtype = static_cast<int>(a.logits_dtype);
  c.uncond_dtype = static_cast<int>(a.uncond_dtype);
  c.x_dtype = static_cast<int>(a.x_dtype);
  c.tau = a.temperature;
  c.g = a.guidance_scale;
  c.one_plus_g = static_cast<float>(1.0 + static_cast<double>(a.guidance_scale));
  c.per_sample_coef = a.coef_rows > 1;
  c.coef_per = c.per_sample_coef ? n / a.batch : n;
  c.channels = a.num_bits;
  c.width = packed_row_bytes(a.num_bits);
  c.p_flip = a.p_flip;
  c.guided = a.uncond_logits != nullptr;
  c.packed = a.packed;
  return c;
}

bool core_aligned(const StepArgs& a) {
  return aligned16(a.logits) && aligned16(a.x_t) && (a.uncond_logits == nullptr || aligned16(a.uncond_logits));
}

}  // namespace

void posterior(const StepArgs& a, float* out, void* stream) {
  if (a.rows * a.num_bits == 0) {
    detail::check_shape(a.rows, a.num_bits, "posterior");
    return;
  }
  const StepCore core = make_core(a, "posterior");
  const int64_t n = a.rows * a.num_bits;
  const bool vec = core_aligned(a) && aligned16(out);
  const int64_t blocks = detail::grid_blocks((n + kChunk - 1) / kChunk);
  posterior_kernel<<<static_cast<unsigned>(blocks), detail::kThreads, 0, detail::as_stream(stream)>>>(core, out, n,
                                                                                                      vec);
  detail::check_launch("posterior");
}

void sample_step(const StepArgs& a, uint8_t* out, void* stream) {
  if (a.rows * a.num_bits == 0) {
    detail::check_shape(a.rows, a.num_bits, "sample_step");
    return;
  }
  SampleStepOp op{};
  op.core = make_core(a, "sample_step");
  if ((a.mask == nullptr) != (a.known == nullptr)) {
    throw std::invalid_argument("cuda sample_step: mask and known go together");
  }
  op.masked = a.mask != nullptr;
  if (op.masked) {
    (void)cpu::dtype_size(a.mask_dtype);
    (void)cpu::dtype_size(a.known_dtype);
  }
  op.mask = a.mask;
  op.known = a.known;
  op.mask_dtype = static_cast<int>(a.mask_dtype);
  op.known_dtype = static_cast<int>(a.known_dtype);
  detail::check_not_null(a.rng, "rng", "sample_step");
  op.rng = a.rng;
  const bool vec = core_aligned(a) && aligned16(out) &&
                   (!op.masked || (aligned16(a.mask) && aligned16(a.known)));
  dev::launch_bits(op, out, nullptr, a.rows, a.num_bits, a.packed, vec, stream, "sample_step");
}

}  // namespace cuda
}  // namespace blkit
