// CUDA random ops on the shared Philox stream: uniform, bernoulli, binary_quantize, q_sample.
// Bits are identical to every other backend: u_i = uniform_at(seed, offset + i) and z_i = (u_i < p_i) with p_i
// in float32 (no transcendental function involved).
#include "blkit/blkit.h"
#include "device.cuh"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

using namespace dev;
using detail::aligned16;

__global__ void __launch_bounds__(256) uniform_kernel(float* out, int64_t n, const int64_t* rng, bool vec) {
  const Rng r = read_rng(rng);
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    float vals[kChunk];
#pragma unroll
    for (int j = 0; j < kChunk; ++j) vals[j] = j < count ? uniform(r, base + j) : 0.0f;
    store_floats(out, base, count, v, vals);
  });
}

// z = (u < p) over dense probabilities of any floating dtype.
struct BernoulliOp {
  static constexpr bool kTwoOutputs = false;
  static constexpr int kMinBlocks = 3;
  static constexpr bool kPackedInput = false;
  const void* probs;
  int dtype;
  const int64_t* rng;
  Rng r;
  __device__ void begin() { r = read_rng(rng); }
  __device__ void end() {}
  __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn, uint32_t*) const {
    float p[kChunk];
    load_floats(probs, dtype, base, count, vec, p);
    uint32_t z = 0;
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      if (j < count && uniform(r, base + j) < p[j]) z |= 1u << j;
    }
    return z;
  }
};

template <typename T>
__global__ void __launch_bounds__(256) quantize_kernel(const void* probs, int dtype, T* out, int64_t n,
                                                       bool deterministic, const int64_t* rng, T one, bool vec) {
  Rng r{0, 0};
  if (!deterministic) r = read_rng(rng);
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    float p[kChunk];
    load_floats(probs, dtype, base, count, v, p);
    uint32_t z = 0;
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      if (j < count) {
        const bool bit = deterministic ? p[j] > 0.5f : uniform(r, base + j) < p[j];
        z |= static_cast<uint32_t>(bit) << j;
      }
    }
    store_values<T>(out, base, count, v, z, one);
  });
}

template <typename T>
void launch_quantize(const void* probs, DType dtype, void* out, int64_t n, bool deterministic, const int64_t* rng,
                     T one, void* stream) {
  const bool vec = aligned16(probs) && aligned16(out);
  const int64_t blocks = detail::grid_blocks((n + kChunk - 1) / kChunk);
  quantize_kernel<T><<<static_cast<unsigned>(blocks), detail::kThreads, 0, detail::as_stream(stream)>>>(
      probs, static_cast<int>(dtype), static_cast<T*>(out), n, deterministic, rng, one, vec);
  detail::check_launch("binary_quantize");
}

// x_t = (u < p(x0)), residual = x_t ^ x0, flips[b] += ones of the residual in sample b.
struct QSampleOp {
  static constexpr bool kTwoOutputs = true;
  static constexpr int kMinBlocks = 3;
  static constexpr bool kPackedInput = false;
  const void* x0;
  int x0_dtype;
  const float* coef;
  bool per_sample_coef;
  int64_t per_sample;  // elements per sample (numel / batch)
  unsigned long long* flips;
  const int64_t* rng;
  Rng r;
  Counter counter;

  __device__ void begin() {
    r = read_rng(rng);
    counter.reset();
  }
  __device__ void end() { counter.flush_warp(flips); }
  __device__ uint32_t chunk(int64_t base, int count, bool vec, XIn, uint32_t* residual) {
    const uint32_t x = load_bits<kChunk>(x0, x0_dtype, base, count, vec);
    Cursor cur;
    cur.init(base, per_sample);
    const float* c = coef + 2 * (per_sample_coef ? cur.sample : 0);
    float p0 = __ldg(c), p1 = __ldg(c + 1);
    uint32_t z = 0, res = 0;
    unsigned run = 0;  // residual ones of the current sample within this chunk
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      if (j < count) {
        const int64_t i = base + j;
        const int64_t prev = cur.sample;
        if (cur.advance(i)) {
          counter.add(prev, run, flips);
          run = 0;
          if (per_sample_coef) {
            c = coef + 2 * cur.sample;
            p0 = __ldg(c);
            p1 = __ldg(c + 1);
          }
        }
        const uint32_t xb = (x >> j) & 1u;
        const uint32_t zb = uniform(r, i) < (xb ? p1 : p0) ? 1u : 0u;
        z |= zb << j;
        res |= (zb ^ xb) << j;
        run += zb ^ xb;
      }
    }
    counter.add(cur.sample, run, flips);
    *residual = res;
    return z;
  }
};

}  // namespace

void uniform(float* out, int64_t n, const int64_t* rng, void* stream) {
  detail::check_nonnegative(n, "n", "uniform");
  if (n == 0) return;
  detail::check_not_null(rng, "rng", "uniform");
  const int64_t blocks = detail::grid_blocks((n + kChunk - 1) / kChunk);
  uniform_kernel<<<static_cast<unsigned>(blocks), detail::kThreads, 0, detail::as_stream(stream)>>>(
      out, n, rng, aligned16(out));
  detail::check_launch("uniform");
}

void bernoulli(const void* probs, DType dtype, uint8_t* out, int64_t rows, int64_t num_bits, bool packed,
               const int64_t* rng, void* stream) {
  detail::check_shape(rows, num_bits, "bernoulli");
  if (!(dtype == cpu::kFloat32 || dtype == cpu::kFloat16 || dtype == cpu::kBFloat16 || dtype == cpu::kFloat64)) {
    throw std::invalid_argument("cuda bernoulli: probs must be a floating dtype");
  }
  if (rows == 0 || num_bits == 0) return;
  detail::check_not_null(rng, "rng", "bernoulli");
  BernoulliOp op{};
  op.probs = probs;
  op.dtype = static_cast<int>(dtype);
  op.rng = rng;
  dev::launch_bits(op, out, nullptr, rows, num_bits, packed, aligned16(probs) && aligned16(out), stream,
                   "bernoulli");
}

void binary_quantize(const void* probs, DType dtype, void* out, int64_t n, bool deterministic, const int64_t* rng,
                     void* stream) {
  detail::check_nonnegative(n, "n", "binary_quantize");
  if (n == 0) return;
  if (!deterministic) detail::check_not_null(rng, "rng", "binary_quantize");
  switch (dtype) {
    case cpu::kFloat32:
      launch_quantize<uint32_t>(probs, dtype, out, n, deterministic, rng, 0x3F800000u, stream);
      break;
    case cpu::kFloat16:
      launch_quantize<uint16_t>(probs, dtype, out, n, deterministic, rng, 0x3C00u, stream);
      break;
    case cpu::kBFloat16:
      launch_quantize<uint16_t>(probs, dtype, out, n, deterministic, rng, 0x3F80u, stream);
      break;
    case cpu::kFloat64:
      launch_quantize<uint64_t>(probs, dtype, out, n, deterministic, rng, 0x3FF0000000000000ull, stream);
      break;
    default:
      throw std::invalid_argument("cuda binary_quantize: probs must be a floating dtype");
  }
}

void q_sample(const QSampleArgs& a, uint8_t* x_t, uint8_t* residual, int64_t* flips, void* stream) {
  detail::check_shape(a.rows, a.num_bits, "q_sample");
  detail::check_nonnegative(a.batch, "batch", "q_sample");
  (void)cpu::dtype_size(a.x0_dtype);
  const int64_t n = a.rows * a.num_bits;
  if (a.batch > 0) {
    detail::check_cuda(cudaMemsetAsync(flips, 0, static_cast<size_t>(a.batch) * sizeof(int64_t),
                                       detail::as_stream(stream)),
                       "cudaMemsetAsync(q_sample flips)");
  }
  if (n == 0) return;
  if (a.batch <= 0 || n % a.batch != 0) {
    throw std::invalid_argument("cuda q_sample: batch must be positive and divide the element count");
  }
  if (a.coef == nullptr || !(a.coef_rows == 1 || a.coef_rows == a.batch)) {
    throw std::invalid_argument("cuda q_sample: coef must have 1 or batch rows");
  }
  detail::check_not_null(a.rng, "rng", "q_sample");
  QSampleOp op{};
  op.x0 = a.x0;
  op.x0_dtype = static_cast<int>(a.x0_dtype);
  op.coef = a.coef;
  op.per_sample_coef = a.coef_rows > 1;
  op.per_sample = n / a.batch;
  op.flips = reinterpret_cast<unsigned long long*>(flips);
  op.rng = a.rng;
  const bool vec = aligned16(a.x0) && aligned16(x_t) && aligned16(residual);
  dev::launch_bits(op, x_t, residual, a.rows, a.num_bits, a.packed, vec, stream, "q_sample");
}

}  // namespace cuda
}  // namespace blkit
