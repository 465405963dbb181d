// blkit CPU kernels (torch-free). Host pointers; layouts and semantics as documented in blkit.h.
//
// Conventions of every function below:
// - Buffers are contiguous, row-major; sizes are element counts (64-bit). Empty inputs are allowed
//   (nothing is read; outputs of size zero are not touched; per-sample outputs are still written).
// - "rows, num_bits": a tensor [..., C] viewed as [rows, C] with C = num_bits; packed buffers are
//   [rows, ceil(C / 8)] (channel c in byte c / 8, bit c % 8, padding bits written as 0, ignored on input).
// - Dense binary inputs of any DType: nonzero = 1 (floating -0.0 counts as 0, NaN as 1).
// - Random ops: element i of the DENSE logical output (row-major, also when the output is packed) uses
//   u_i = uniform_at(seed, offset + i) (philox.h); counters wrap modulo 2**64.
// - Per-sample tables `coef` are float32 [coef_rows, K] with coef_rows = 1 (one row for every element)
//   or coef_rows = batch (row b for sample b; a sample is numel / batch consecutive elements).
// - Work is split over OpenMP threads in fixed tiles; results do not depend on the thread count.
// - Throw std::invalid_argument on negative sizes or inconsistent arguments.
#pragma once

#include <stdint.h>

#include <stdexcept>
#include <string>

namespace blkit {
namespace cpu {

// Element type of a dense buffer.
enum DType : int32_t {
  kByte = 0,  // uint8, int8, bool (one byte)
  kInt16 = 1,
  kInt32 = 2,
  kInt64 = 3,
  kFloat16 = 4,
  kBFloat16 = 5,
  kFloat32 = 6,
  kFloat64 = 7,
};

// Bytes per element of `dtype` (throws std::invalid_argument on an unknown code). Inline: the CUDA sources
// and the CUDA emulation module use it without linking the CPU library.
inline int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case kByte:
      return 1;
    case kInt16:
    case kFloat16:
    case kBFloat16:
      return 2;
    case kInt32:
    case kFloat32:
      return 4;
    case kInt64:
    case kFloat64:
      return 8;
  }
  throw std::invalid_argument("blkit cpu: unknown dtype " + std::to_string(static_cast<int>(dtype)));
}

// --- bits -----------------------------------------------------------------------------------------
void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits);
// pack_bits of a dense binary input of any dtype (nonzero = 1).
void pack_bits_typed(const void* bits, DType dtype, uint8_t* packed, int64_t rows, int64_t num_bits);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits);
// unpack_bits writing 0 / 1 in `dtype` (floating: 0.0 / 1.0).
void unpack_bits_typed(const uint8_t* packed, void* bits, DType dtype, int64_t rows, int64_t num_bits);

// out[i] = a[i] ^ b[i] (bitwise on bytes: packed words, 0/1 uint8, bool).
void xor_bytes(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n);
// out[i] = (a[i] != 0) ^ (b[i] != 0) as 0/1 bytes, a and b of `dtype`.
void xor_nonzero(const void* a, const void* b, DType dtype, uint8_t* out, int64_t n);

// Bytes viewed as [outer, dim, inner]: out[o * inner + i] = sum_d popcount(packed[(o * dim + d) * inner + i]).
void popcount(const uint8_t* packed, int64_t* out, int64_t outer, int64_t dim, int64_t inner);

// --- random ---------------------------------------------------------------------------------------
// out[i] = uniform_at(seed, offset + i) for i < n.
void uniform(float* out, int64_t n, uint64_t seed, uint64_t offset);

// z_i = (u_i < float(p_i)), p of dtype kFloat16/kBFloat16/kFloat32/kFloat64; out dense uint8
// [rows, num_bits] or packed.
void bernoulli(const void* probs, DType dtype, uint8_t* out, int64_t rows, int64_t num_bits, bool packed,
               uint64_t seed, uint64_t offset);

// z_i = (u_i < float(p_i)), or (float(p_i) > 0.5) when deterministic, written as 0 / 1 in probs' dtype.
void binary_quantize(const void* probs, DType dtype, void* out, int64_t n, bool deterministic, uint64_t seed,
                     uint64_t offset);

// The inputs of forward noising (shared with the CUDA kernels' QSampleArgs, which read their random numbers
// from device memory instead of seed and offset).
struct QSampleInputs {
  const void* x0 = nullptr;  // dense [rows, num_bits]
  DType x0_dtype = kByte;
  const float* coef = nullptr;  // [coef_rows, 2]: P(x_t = 1 | x0 = 0), P(x_t = 1 | x0 = 1)
  int64_t coef_rows = 1;
  int64_t batch = 0;  // x0.shape[0]
  int64_t rows = 0;
  int64_t num_bits = 0;
  bool packed = false;  // outputs packed
};
struct QSampleArgs : QSampleInputs {
  uint64_t seed = 0, offset = 0;
};
// x_t = (u < p(x0)), residual = x_t ^ x0 (dense uint8 or packed), flips[b] = ones of the residual in sample b.
void q_sample(const QSampleArgs& args, uint8_t* x_t, uint8_t* residual, int64_t* flips);

// The inputs of a reverse step (shared with the CUDA kernels' StepArgs, which read their random numbers from
// device memory instead of seed and offset).
struct StepInputs {
  const void* logits = nullptr;  // [rows, num_bits], kFloat32 / kFloat16 / kBFloat16
  DType logits_dtype = kFloat32;
  const void* uncond_logits = nullptr;  // optional (guidance), same shape
  DType uncond_dtype = kFloat32;
  float guidance_scale = 0.0f;
  float temperature = 1.0f;
  const void* x_t = nullptr;  // dense of x_dtype, or packed uint8 when `packed`
  DType x_dtype = kByte;
  bool packed = false;  // x_t (and sample_step's output) packed
  bool p_flip = true;
  const float* coef = nullptr;  // [coef_rows, 5] (blkit/ops/_coefficients.py, STEP_COLUMNS)
  int64_t coef_rows = 1;
  const void* mask = nullptr;  // optional, dense, logits' shape: output = known where mask != 0
  DType mask_dtype = kByte;
  const void* known = nullptr;
  DType known_dtype = kByte;
  int64_t batch = 0;  // logits.shape[0]
  int64_t rows = 0;
  int64_t num_bits = 0;
};
struct StepArgs : StepInputs {
  uint64_t seed = 0, offset = 0;  // sample_step only
};
// float32 [rows, num_bits]: P(x_{t'} = 1), or phat = P(x_0 = 1) in rows whose step is final.
void posterior(const StepArgs& args, float* out);
// uint8 x_{t'} = (u < pi), or (phat > 0.5) at the final step; dense [rows, num_bits] or packed.
void sample_step(const StepArgs& args, uint8_t* out);

enum Reduction : int32_t { kMean = 0, kSum = 1, kNone = 2 };

struct LossArgs {
  const void* logits = nullptr;  // [n], kFloat32 / kFloat16 / kBFloat16
  DType logits_dtype = kFloat32;
  const void* x_t = nullptr;  // dense [n]
  DType x_dtype = kByte;
  const void* x0 = nullptr;  // dense [n]
  DType x0_dtype = kByte;
  const float* coef = nullptr;  // [coef_rows, 5]: time weight, k[t-1], b[t-1], keep[t], (t == 1)
  int64_t coef_rows = 1;
  bool p_flip = true;
  bool balance = true;
  float gamma = 0.0f;
  float aux_weight = 0.0f;
  Reduction reduction = kMean;
  int64_t batch = 0;  // logits.shape[0]
  int64_t n = 0;      // numel
};
// loss: 1 float (mean / sum; mean of nothing is NaN, sum of nothing 0) or n floats (none).
// grad (nullable): n floats, d loss / d logits (for kNone the element-wise derivative).
void diffusion_loss(const LossArgs& args, float* loss, float* grad);

// --- configuration --------------------------------------------------------------------------------
// Instruction set of the kernels in use: "avx512", "avx2" or "generic" (SSE2 on x86-64). Chosen at first
// use from the CPU (BLKIT_CPU_ISA=generic|avx2|avx512 in the environment caps it).
const char* isa();
// Force an instruction set ("auto" = best supported); false if this CPU or build does not support it.
bool set_isa(const char* name);
// Threads of the parallel kernels; 0 = the OpenMP default. Returns the previous setting.
int set_num_threads(int num_threads);

}  // namespace cpu
}  // namespace blkit
