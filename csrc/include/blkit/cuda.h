// blkit CUDA kernels (torch-free), declared only with BLKIT_WITH_CUDA.
//
// Same operations, layouts and semantics as the CPU kernels (blkit/cpu.h; DType codes and the loss
// Reduction are shared), with these differences:
// - Every buffer is a DEVICE pointer of the current CUDA device; `stream` is a cudaStream_t (nullptr =
//   legacy default stream). Every function only enqueues work on `stream` (kernels, memsets): no host
//   synchronisation, no allocation, so every call can be captured in a CUDA graph.
// - Random ops take `rng`: a device pointer to int64 [2] = (seed, offset) read by the kernels, so a captured
//   graph replays with whatever seed the tensor holds. u_i = uniform_at(seed, offset + i), i the flat index of
//   the element in the DENSE logical output (also when the output is packed).
// - diffusion_loss needs a device workspace of diffusion_loss_workspace_size() bytes.
// - Throws std::invalid_argument for bad sizes/arguments and std::runtime_error (naming the kernel) when a
//   CUDA call or a kernel launch fails.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "blkit/cpu.h"

#if defined(BLKIT_WITH_CUDA)
namespace blkit {
namespace cuda {

using DType = cpu::DType;
using Reduction = cpu::Reduction;

// --- bits -----------------------------------------------------------------------------------------
void pack_bits(const uint8_t* bits, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream);
void pack_bits_typed(const void* bits, DType dtype, uint8_t* packed, int64_t rows, int64_t num_bits, void* stream);
void unpack_bits(const uint8_t* packed, uint8_t* bits, int64_t rows, int64_t num_bits, void* stream);
void unpack_bits_typed(const uint8_t* packed, void* bits, DType dtype, int64_t rows, int64_t num_bits,
                       void* stream);
void xor_bytes(const uint8_t* a, const uint8_t* b, uint8_t* out, int64_t n, void* stream);
void xor_nonzero(const void* a, const void* b, DType dtype, uint8_t* out, int64_t n, void* stream);
// Bytes viewed as [outer, dim, inner]: out[o * inner + i] = sum_d popcount(packed[(o * dim + d) * inner + i]).
void popcount(const uint8_t* packed, int64_t* out, int64_t outer, int64_t dim, int64_t inner, void* stream);

// --- random ---------------------------------------------------------------------------------------
void uniform(float* out, int64_t n, const int64_t* rng, void* stream);
void bernoulli(const void* probs, DType dtype, uint8_t* out, int64_t rows, int64_t num_bits, bool packed,
               const int64_t* rng, void* stream);
void binary_quantize(const void* probs, DType dtype, void* out, int64_t n, bool deterministic, const int64_t* rng,
                     void* stream);

struct QSampleArgs : cpu::QSampleInputs {  // the CPU kernels' noising inputs, device pointers
  const int64_t* rng = nullptr;             // device int64 [2] (seed, offset)
};
// x_t, residual (dense uint8 or packed) and flips[b] (int64, zeroed here first).
void q_sample(const QSampleArgs& args, uint8_t* x_t, uint8_t* residual, int64_t* flips, void* stream);

struct StepArgs : cpu::StepInputs {  // the CPU kernels' step inputs, device pointers
  const int64_t* rng = nullptr;       // device int64 [2] (seed, offset) (sample_step only)
};
void posterior(const StepArgs& args, float* out, void* stream);
void sample_step(const StepArgs& args, uint8_t* out, void* stream);

using LossArgs = cpu::LossArgs;  // device pointers; same fields and meaning
// Bytes of device workspace diffusion_loss needs for these arguments on the current device.
size_t diffusion_loss_workspace_size(const LossArgs& args);
// loss: 1 float (mean / sum) or n floats (none); grad (nullable): n floats. The sum is reduced in a fixed
// order (per-block partials in float64, then one block adds them), so it is deterministic on a device.
void diffusion_loss(const LossArgs& args, float* loss, float* grad, void* workspace, size_t workspace_bytes,
                    void* stream);

}  // namespace cuda
}  // namespace blkit
#endif
