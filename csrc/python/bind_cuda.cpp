// CUDA kernels of blkit._native (blkit::cuda), compiled only with BLKIT_WITH_CUDA. Device pointers of the
// current CUDA device; every call is asynchronous on stream_ptr (a cudaStream_t address, e.g.
// torch.cuda.current_stream().cuda_stream) and releases the GIL. Random ops take rng_ptr: the address of a
// device int64 [2] tensor (seed, offset), read by the kernels (CUDA-graph safe). dtype codes as in bind_cpu.cpp.
#include <string>

#include "bindings.h"
#include "blkit/blkit.h"

namespace blkit_py {


void bind_cuda(py::module_& m) {
  m.def(
      "cuda_pack_bits",
      [](std::uintptr_t bits_ptr, std::uintptr_t packed_ptr, std::int64_t rows, std::int64_t num_bits, int dtype,
         std::uintptr_t stream_ptr) {
        blkit::cuda::pack_bits_typed(as_ptr<const void>(bits_ptr), as_dtype(dtype),
                                     as_ptr<std::uint8_t>(packed_ptr), rows, num_bits, as_stream(stream_ptr));
      },
      py::arg("bits_ptr"), py::arg("packed_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("dtype"),
      py::arg("stream_ptr"), release(),
      "CUDA pack_bits: [rows, num_bits] of dtype (nonzero = 1) -> uint8 [rows, ceil(num_bits/8)].");

  m.def(
      "cuda_unpack_bits",
      [](std::uintptr_t packed_ptr, std::uintptr_t bits_ptr, std::int64_t rows, std::int64_t num_bits, int dtype,
         std::uintptr_t stream_ptr) {
        blkit::cuda::unpack_bits_typed(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<void>(bits_ptr),
                                       as_dtype(dtype), rows, num_bits, as_stream(stream_ptr));
      },
      py::arg("packed_ptr"), py::arg("bits_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("dtype"),
      py::arg("stream_ptr"), release(), "CUDA unpack_bits: uint8 [rows, ceil(num_bits/8)] -> 0/1 of dtype.");

  m.def(
      "cuda_xor_bits",
      [](std::uintptr_t a_ptr, std::uintptr_t b_ptr, std::uintptr_t out_ptr, std::int64_t n, int dtype, bool bitwise,
         std::uintptr_t stream_ptr) {
        if (bitwise) {
          blkit::cuda::xor_bytes(as_ptr<const std::uint8_t>(a_ptr), as_ptr<const std::uint8_t>(b_ptr),
                                 as_ptr<std::uint8_t>(out_ptr), n, as_stream(stream_ptr));
        } else {
          blkit::cuda::xor_nonzero(as_ptr<const void>(a_ptr), as_ptr<const void>(b_ptr), as_dtype(dtype),
                                   as_ptr<std::uint8_t>(out_ptr), n, as_stream(stream_ptr));
        }
      },
      py::arg("a_ptr"), py::arg("b_ptr"), py::arg("out_ptr"), py::arg("n"), py::arg("dtype"), py::arg("bitwise"),
      py::arg("stream_ptr"), release(),
      "CUDA xor: bitwise out = a ^ b on bytes; else out = (a != 0) ^ (b != 0) as uint8, a and b of dtype.");

  m.def(
      "cuda_popcount",
      [](std::uintptr_t packed_ptr, std::uintptr_t out_ptr, std::int64_t outer, std::int64_t dim, std::int64_t inner,
         std::uintptr_t stream_ptr) {
        blkit::cuda::popcount(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<std::int64_t>(out_ptr), outer, dim, inner,
                              as_stream(stream_ptr));
      },
      py::arg("packed_ptr"), py::arg("out_ptr"), py::arg("outer"), py::arg("dim"), py::arg("inner"),
      py::arg("stream_ptr"), release(), "CUDA popcount: int64 out[outer, inner] = set bits of uint8 [outer, dim, inner].");

  m.def(
      "cuda_uniform",
      [](std::uintptr_t out_ptr, std::int64_t n, std::uintptr_t rng_ptr, std::uintptr_t stream_ptr) {
        blkit::cuda::uniform(as_ptr<float>(out_ptr), n, as_ptr<const std::int64_t>(rng_ptr), as_stream(stream_ptr));
      },
      py::arg("out_ptr"), py::arg("n"), py::arg("rng_ptr"), py::arg("stream_ptr"), release(),
      "CUDA out[i] = tl.rand(seed, offset + i) with (seed, offset) read from the device int64 [2] at rng_ptr.");

  m.def(
      "cuda_bernoulli",
      [](std::uintptr_t probs_ptr, int dtype, std::uintptr_t out_ptr, std::int64_t rows, std::int64_t num_bits,
         bool packed, std::uintptr_t rng_ptr, std::uintptr_t stream_ptr) {
        blkit::cuda::bernoulli(as_ptr<const void>(probs_ptr), as_dtype(dtype), as_ptr<std::uint8_t>(out_ptr),
                               rows, num_bits, packed, as_ptr<const std::int64_t>(rng_ptr), as_stream(stream_ptr));
      },
      py::arg("probs_ptr"), py::arg("dtype"), py::arg("out_ptr"), py::arg("rows"), py::arg("num_bits"),
      py::arg("packed"), py::arg("rng_ptr"), py::arg("stream_ptr"), release(),
      "CUDA uint8 (u < float(p)) over [rows, num_bits], dense or packed.");

  m.def(
      "cuda_binary_quantize",
      [](std::uintptr_t probs_ptr, int dtype, std::uintptr_t out_ptr, std::int64_t n, bool deterministic,
         std::uintptr_t rng_ptr, std::uintptr_t stream_ptr) {
        blkit::cuda::binary_quantize(as_ptr<const void>(probs_ptr), as_dtype(dtype), as_ptr<void>(out_ptr), n,
                                     deterministic, as_optional<std::int64_t>(rng_ptr), as_stream(stream_ptr));
      },
      py::arg("probs_ptr"), py::arg("dtype"), py::arg("out_ptr"), py::arg("n"), py::arg("deterministic"),
      py::arg("rng_ptr"), py::arg("stream_ptr"), release(), "CUDA (u < p) or (p > 0.5) as 0/1 in probs' dtype.");

  m.def(
      "cuda_q_sample",
      [](std::uintptr_t x0_ptr, int x0_dtype, std::uintptr_t coef_ptr, std::int64_t coef_rows, std::uintptr_t x_t_ptr,
         std::uintptr_t residual_ptr, std::uintptr_t flips_ptr, std::int64_t batch, std::int64_t rows,
         std::int64_t num_bits, bool packed, std::uintptr_t rng_ptr, std::uintptr_t stream_ptr) {
        const blkit::cuda::QSampleArgs a{
            q_sample_inputs(x0_ptr, x0_dtype, coef_ptr, coef_rows, batch, rows, num_bits, packed),
            as_optional<std::int64_t>(rng_ptr)};
        blkit::cuda::q_sample(a, as_ptr<std::uint8_t>(x_t_ptr), as_ptr<std::uint8_t>(residual_ptr),
                              as_ptr<std::int64_t>(flips_ptr), as_stream(stream_ptr));
      },
      py::arg("x0_ptr"), py::arg("x0_dtype"), py::arg("coef_ptr"), py::arg("coef_rows"), py::arg("x_t_ptr"),
      py::arg("residual_ptr"), py::arg("flips_ptr"), py::arg("batch"), py::arg("rows"), py::arg("num_bits"),
      py::arg("packed"), py::arg("rng_ptr"), py::arg("stream_ptr"), release(),
      "CUDA forward noising: x_t, residual (dense or packed) and int64 flips per sample.");

  auto step = [](bool sample) {
    return [sample](std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr, int x_dtype, bool packed,
                    std::uintptr_t coef_ptr, std::int64_t coef_rows, std::int64_t batch, std::int64_t rows,
                    std::int64_t num_bits, double temperature, bool p_flip, std::uintptr_t uncond_ptr,
                    int uncond_dtype, double guidance_scale, std::uintptr_t mask_ptr, int mask_dtype,
                    std::uintptr_t known_ptr, int known_dtype, std::uintptr_t out_ptr, std::uintptr_t rng_ptr,
                    std::uintptr_t stream_ptr) {
      const blkit::cuda::StepArgs a{step_inputs(logits_ptr, logits_dtype, x_t_ptr, x_dtype, packed, coef_ptr,
                                                coef_rows, batch, rows, num_bits, temperature, p_flip, uncond_ptr,
                                                uncond_dtype, guidance_scale, mask_ptr, mask_dtype, known_ptr,
                                                known_dtype),
                                    as_optional<std::int64_t>(rng_ptr)};
      if (sample) {
        blkit::cuda::sample_step(a, as_ptr<std::uint8_t>(out_ptr), as_stream(stream_ptr));
      } else {
        blkit::cuda::posterior(a, as_ptr<float>(out_ptr), as_stream(stream_ptr));
      }
    };
  };
  const char* step_doc =
      "CUDA reverse step over logits [rows, num_bits] (x_t dense or packed); posterior writes float32 "
      "P(x_{t'} = 1), sample_step writes uint8 x_{t'} (packed when packed).";
  for (const bool sample : {false, true}) {
    m.def(sample ? "cuda_sample_step" : "cuda_posterior", step(sample), py::arg("logits_ptr"),
          py::arg("logits_dtype"), py::arg("x_t_ptr"), py::arg("x_dtype"), py::arg("packed"), py::arg("coef_ptr"),
          py::arg("coef_rows"), py::arg("batch"), py::arg("rows"), py::arg("num_bits"), py::arg("temperature"),
          py::arg("p_flip"), py::arg("uncond_ptr") = 0, py::arg("uncond_dtype") = 6,
          py::arg("guidance_scale") = 0.0, py::arg("mask_ptr") = 0, py::arg("mask_dtype") = 0,
          py::arg("known_ptr") = 0, py::arg("known_dtype") = 0, py::arg("out_ptr"), py::arg("rng_ptr") = 0,
          py::arg("stream_ptr") = 0, release(), step_doc);
  }

  m.def(
      "cuda_diffusion_loss_workspace_size",
      [](std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr, int x_dtype, std::uintptr_t x0_ptr,
         int x0_dtype, std::uintptr_t coef_ptr, std::int64_t coef_rows, std::int64_t batch, std::int64_t n,
         bool p_flip, bool balance, double gamma, double aux_weight, int reduction) {
        return blkit::cuda::diffusion_loss_workspace_size(loss_args(logits_ptr, logits_dtype, x_t_ptr, x_dtype,
                                                                    x0_ptr, x0_dtype, coef_ptr, coef_rows, batch, n,
                                                                    p_flip, balance, gamma, aux_weight, reduction));
      },
      py::arg("logits_ptr"), py::arg("logits_dtype"), py::arg("x_t_ptr"), py::arg("x_dtype"), py::arg("x0_ptr"),
      py::arg("x0_dtype"), py::arg("coef_ptr"), py::arg("coef_rows"), py::arg("batch"), py::arg("n"),
      py::arg("p_flip"), py::arg("balance"), py::arg("gamma"), py::arg("aux_weight"), py::arg("reduction"),
      "Bytes of device workspace cuda_diffusion_loss needs for these arguments on the current device.");

  m.def(
      "cuda_diffusion_loss",
      [](std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr, int x_dtype, std::uintptr_t x0_ptr,
         int x0_dtype, std::uintptr_t coef_ptr, std::int64_t coef_rows, std::int64_t batch, std::int64_t n,
         bool p_flip, bool balance, double gamma, double aux_weight, int reduction, std::uintptr_t loss_ptr,
         std::uintptr_t grad_ptr, std::uintptr_t workspace_ptr, std::size_t workspace_bytes,
         std::uintptr_t stream_ptr) {
        const blkit::cuda::LossArgs a = loss_args(logits_ptr, logits_dtype, x_t_ptr, x_dtype, x0_ptr, x0_dtype,
                                                  coef_ptr, coef_rows, batch, n, p_flip, balance, gamma, aux_weight,
                                                  reduction);
        blkit::cuda::diffusion_loss(a, as_ptr<float>(loss_ptr), grad_ptr == 0 ? nullptr : as_ptr<float>(grad_ptr),
                                    as_ptr<void>(workspace_ptr), workspace_bytes, as_stream(stream_ptr));
      },
      py::arg("logits_ptr"), py::arg("logits_dtype"), py::arg("x_t_ptr"), py::arg("x_dtype"), py::arg("x0_ptr"),
      py::arg("x0_dtype"), py::arg("coef_ptr"), py::arg("coef_rows"), py::arg("batch"), py::arg("n"),
      py::arg("p_flip"), py::arg("balance"), py::arg("gamma"), py::arg("aux_weight"), py::arg("reduction"),
      py::arg("loss_ptr"), py::arg("grad_ptr"), py::arg("workspace_ptr"), py::arg("workspace_bytes"),
      py::arg("stream_ptr"), release(),
      "CUDA training loss (reduction 0 mean, 1 sum, 2 none) and, when grad_ptr != 0, d loss / d logits.");
}

}  // namespace blkit_py
