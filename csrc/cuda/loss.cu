// CUDA training loss (DESIGN §1.3): value and d loss / d logits in one pass over the data.
//
// Launches, in stream order:
//   1. (balance only) memset + per-sample target counts: integer atomics on int64 counters, exact;
//   2. the loss kernel: element loss and gradient (blkit/step_math.h loss_element, the same math as the CPU
//      kernels); gradient and, for reduction="none", the element losses are stored; otherwise every thread
//      sums its elements (8-element float sums added into a float64 accumulator, in loop order), the block
//      adds its threads' sums in a fixed tree and writes one float64 partial per block;
//   3. (mean / sum) one block adds the partials in a fixed order and writes the float32 result.
// No float atomics anywhere: for a given device (grid size = f(SM count)) the result is bit-reproducible.
#include "blkit/blkit.h"
#include "device.cuh"
#include "launch.cuh"

namespace blkit {
namespace cuda {
namespace {

using namespace dev;
using detail::aligned16;

// Fixed-order sum over the block (every thread must call it); the result is valid in thread 0.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_sums[detail::kWarpsPerBlock];
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) v += __shfl_xor_sync(kFullMask, v, d);
  const int warp = static_cast<int>(threadIdx.x / 32);
  if (lane_id() == 0) warp_sums[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    const int warps = static_cast<int>(blockDim.x / 32);
    for (int w = 0; w < warps; ++w) total += warp_sums[w];
  }
  return total;
}

// Elements per thread and iteration of the loss kernel: 8 (two float4 / one 16-byte bf16 load of logits).
// The element loss is long (exp, log, several divisions); 8 independent elements give enough ILP while the
// aux variants still fit in 128 registers (two resident blocks per SM).
constexpr int kLossChunk = 8;

// Pairwise float sum of a loss chunk in a fixed order (constant indices: stays in registers).
__device__ __forceinline__ float pairwise_sum(const float (&v)[kLossChunk]) {
  float a[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) a[j] = v[j] + v[j + 4];
  return (a[0] + a[2]) + (a[1] + a[3]);
}

// y = (x_t ^ x0) for p_flip, else x0; counts[sample] += ones of y.
__global__ void __launch_bounds__(256)
    target_count_kernel(const void* x, int x_dtype, const void* x0, int x0_dtype, bool p_flip, int64_t n,
                        int64_t per_sample, unsigned long long* counts, bool vec) {
  Counter counter;
  counter.reset();
  for_each_chunk<kChunk>(n, vec, [&](int64_t base, int count, bool v) {
    uint32_t y = load_bits<kChunk>(x0, x0_dtype, base, count, v);
    if (p_flip) y ^= load_bits<kChunk>(x, x_dtype, base, count, v);
    y &= low_mask(count);
    Cursor cur;
    cur.init(base, per_sample);
    if (base + count <= cur.next) {  // the whole chunk lies in one sample
      counter.add(cur.sample, static_cast<unsigned>(__popc(y)), counts);
    } else {
      for (int j = 0; j < count; ++j) {
        cur.advance(base + j);
        counter.add(cur.sample, (y >> j) & 1u, counts);
      }
    }
  });
  counter.flush_warp(counts);
}

struct LossParams {
  const void* logits;
  const void* x;
  const void* x0;
  const float* coef;
  const unsigned long long* counts;  // per-sample target counts (balance), else null
  int logits_dtype, x_dtype, x0_dtype;
  bool per_sample_coef, balance, none, vec;
  int64_t n;
  int64_t per_sample;  // elements per sample
  int64_t row_per;     // elements per LossRow: per_sample when rows vary by sample, else n
  float gamma, aux_weight, grad_scale;
  float* loss;       // n floats (none)
  float* grad;       // n floats or null
  double* partials;  // one per block (mean / sum)
};

__device__ __forceinline__ math::LossRow loss_row(const LossParams& p, int64_t sample) {
  float w = 0.0f;
  if (p.balance) {
    w = static_cast<float>(static_cast<double>(__ldg(p.counts + sample)) / static_cast<double>(p.per_sample));
  }
  return math::make_loss_row(p.coef + 5 * (p.per_sample_coef ? sample : 0), p.balance, w, p.aux_weight);
}

// At least two resident blocks per SM (<= 128 registers): the aux variants would otherwise take 178.
template <int kGamma, bool kPFlip, bool kAux>
__global__ void __launch_bounds__(256, 2) loss_kernel(LossParams p) {
  double acc = 0.0;
  const int64_t n = p.n;
  for_each_chunk<kLossChunk>(n, p.vec, [&](int64_t base, int count, bool v) {
    float l[kLossChunk];
    load_floats(p.logits, p.logits_dtype, base, count, v, l);
    const uint32_t xb = load_bits<kLossChunk>(p.x, p.x_dtype, base, count, v);
    const uint32_t x0b = load_bits<kLossChunk>(p.x0, p.x0_dtype, base, count, v);
    float el[kLossChunk], gr[kLossChunk];
#pragma unroll
    for (int j = 0; j < kLossChunk; ++j) {
      el[j] = 0.0f;
      gr[j] = 0.0f;
    }
    // Runs of elements [j0, j1) of one sample (one LossRow each); usually the whole chunk.
    Cursor cur;
    cur.init(base, p.row_per);
    int j0 = 0;
    while (j0 < count) {
      const int64_t left = cur.next - base;
      const int j1 = left < count ? static_cast<int>(left) : count;
      const math::LossRow row = loss_row(p, cur.sample);
#pragma unroll
      for (int j = 0; j < kLossChunk; ++j) {
        if (j >= j0 && j < j1) {
          float d;
          el[j] = math::loss_element<kGamma, kPFlip, kAux>(l[j], static_cast<float>((xb >> j) & 1u),
                                                           static_cast<float>((x0b >> j) & 1u), row, p.gamma,
                                                           &d);
          gr[j] = d * p.grad_scale;
        }
      }
      j0 = j1;
      ++cur.sample;
      cur.next += cur.per;
    }
    if (p.grad != nullptr) store_floats(p.grad, base, count, v, gr);
    if (p.none) {
      store_floats(p.loss, base, count, v, el);
    } else {
      acc += static_cast<double>(pairwise_sum(el));  // fixed order, then float64 accumulation
    }
  });
  if (!p.none) {  // uniform over the grid
    const double total = block_sum(acc);
    if (threadIdx.x == 0) p.partials[blockIdx.x] = total;
  }
}

__global__ void __launch_bounds__(256)
    loss_finalize_kernel(const double* partials, int64_t count, bool mean, int64_t n, float* out) {
  double v = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) v += partials[i];
  const double total = block_sum(v);
  if (threadIdx.x == 0) out[0] = static_cast<float>(mean ? total / static_cast<double>(n) : total);  // 0/0: NaN
}

int64_t loss_blocks(int64_t n) { return n == 0 ? 0 : detail::grid_blocks((n + kLossChunk - 1) / kLossChunk); }

size_t align8(size_t v) { return (v + 7) / 8 * 8; }

template <int kGamma, bool kPFlip, bool kAux>
void launch_loss(const LossParams& p, int64_t blocks, cudaStream_t s) {
  loss_kernel<kGamma, kPFlip, kAux><<<static_cast<unsigned>(blocks), detail::kThreads, 0, s>>>(p);
}

template <int kGamma>
void launch_loss_gamma(const LossParams& p, bool p_flip, bool aux, int64_t blocks, cudaStream_t s) {
  if (p_flip) {
    if (aux) launch_loss<kGamma, true, true>(p, blocks, s);
    else launch_loss<kGamma, true, false>(p, blocks, s);
  } else {
    if (aux) launch_loss<kGamma, false, true>(p, blocks, s);
    else launch_loss<kGamma, false, false>(p, blocks, s);
  }
}

void check_loss_args(const LossArgs& a) {
  detail::check_nonnegative(a.n, "n", "diffusion_loss");
  detail::check_nonnegative(a.batch, "batch", "diffusion_loss");
  if (!(a.logits_dtype == cpu::kFloat32 || a.logits_dtype == cpu::kFloat16 || a.logits_dtype == cpu::kBFloat16)) {
    throw std::invalid_argument("cuda diffusion_loss: logits must be float32, float16 or bfloat16");
  }
  (void)cpu::dtype_size(a.x_dtype);
  (void)cpu::dtype_size(a.x0_dtype);
  if (!(a.reduction == cpu::kMean || a.reduction == cpu::kSum || a.reduction == cpu::kNone)) {
    throw std::invalid_argument("cuda diffusion_loss: unknown reduction");
  }
  if (a.n == 0) return;
  if (a.batch <= 0 || a.n % a.batch != 0) {
    throw std::invalid_argument("cuda diffusion_loss: batch must be positive and divide the element count");
  }
  if (a.coef == nullptr || !(a.coef_rows == 1 || a.coef_rows == a.batch)) {
    throw std::invalid_argument("cuda diffusion_loss: coef must have 1 or batch rows");
  }
}

}  // namespace

size_t diffusion_loss_workspace_size(const LossArgs& a) {
  check_loss_args(a);
  if (a.n == 0) return 0;
  size_t bytes = 0;
  if (a.reduction != cpu::kNone) bytes += align8(static_cast<size_t>(loss_blocks(a.n)) * sizeof(double));
  if (a.balance) bytes += align8(static_cast<size_t>(a.batch) * sizeof(unsigned long long));
  return bytes;
}

void diffusion_loss(const LossArgs& a, float* loss, float* grad, void* workspace, size_t workspace_bytes,
                    void* stream) {
  const size_t needed = diffusion_loss_workspace_size(a);  // also checks the arguments
  const cudaStream_t s = detail::as_stream(stream);
  const bool none = a.reduction == cpu::kNone;
  if (a.n == 0) {
    if (!none) {  // sum of nothing: 0; mean of nothing: NaN
      loss_finalize_kernel<<<1, detail::kThreads, 0, s>>>(nullptr, 0, a.reduction == cpu::kMean, 0, loss);
      detail::check_launch("diffusion_loss_finalize");
    }
    return;
  }
  if (workspace_bytes < needed || (needed > 0 && (reinterpret_cast<uintptr_t>(workspace) & 7u) != 0)) {
    throw std::invalid_argument("cuda diffusion_loss: workspace must be 8-byte aligned and hold " +
                                std::to_string(needed) + " bytes (diffusion_loss_workspace_size)");
  }
  const int64_t blocks = loss_blocks(a.n);
  uint8_t* ws = static_cast<uint8_t*>(workspace);
  double* partials = nullptr;
  if (!none) {
    partials = reinterpret_cast<double*>(ws);
    ws += align8(static_cast<size_t>(blocks) * sizeof(double));
  }
  unsigned long long* counts = nullptr;
  const int64_t per_sample = a.n / a.batch;
  const bool vec = aligned16(a.logits) && aligned16(a.x_t) && aligned16(a.x0) && (grad == nullptr || aligned16(grad)) &&
                   (!none || aligned16(loss));
  if (a.balance) {
    counts = reinterpret_cast<unsigned long long*>(ws);
    detail::check_cuda(cudaMemsetAsync(counts, 0, static_cast<size_t>(a.batch) * sizeof(unsigned long long), s),
                       "cudaMemsetAsync(diffusion_loss counts)");
    target_count_kernel<<<static_cast<unsigned>(detail::grid_blocks((a.n + kChunk - 1) / kChunk)), detail::kThreads,
                          0, s>>>(a.x_t, static_cast<int>(a.x_dtype), a.x0, static_cast<int>(a.x0_dtype), a.p_flip,
                                  a.n, per_sample, counts, vec);
    detail::check_launch("diffusion_loss_target_count");
  }
  LossParams p{};
  p.logits = a.logits;
  p.x = a.x_t;
  p.x0 = a.x0;
  p.coef = a.coef;
  p.counts = counts;
  p.logits_dtype = static_cast<int>(a.logits_dtype);
  p.x_dtype = static_cast<int>(a.x_dtype);
  p.x0_dtype = static_cast<int>(a.x0_dtype);
  p.per_sample_coef = a.coef_rows > 1;
  p.balance = a.balance;
  p.none = none;
  p.vec = vec;
  p.n = a.n;
  p.per_sample = per_sample;
  p.row_per = (p.per_sample_coef || a.balance) ? per_sample : a.n;
  p.gamma = a.gamma;
  p.aux_weight = a.aux_weight;
  p.grad_scale = a.reduction == cpu::kMean ? static_cast<float>(1.0 / static_cast<double>(a.n)) : 1.0f;
  p.loss = none ? loss : nullptr;
  p.grad = grad;
  p.partials = partials;
  const bool aux = a.aux_weight > 0.0f;
  if (a.gamma == 0.0f) {
    launch_loss_gamma<math::kGammaZero>(p, a.p_flip, aux, blocks, s);
  } else if (a.gamma == 1.0f) {
    launch_loss_gamma<math::kGammaOne>(p, a.p_flip, aux, blocks, s);
  } else if (a.gamma == 2.0f) {
    launch_loss_gamma<math::kGammaTwo>(p, a.p_flip, aux, blocks, s);
  } else {
    launch_loss_gamma<math::kGammaGeneral>(p, a.p_flip, aux, blocks, s);
  }
  detail::check_launch("diffusion_loss");
  if (!none) {
    loss_finalize_kernel<<<1, detail::kThreads, 0, s>>>(partials, blocks, a.reduction == cpu::kMean, a.n, loss);
    detail::check_launch("diffusion_loss_finalize");
  }
}

}  // namespace cuda
}  // namespace blkit
