// CPU kernels of blkit._native (blkit::cpu); all buffer functions release the GIL.
//
// Buffers are raw addresses (tensor.data_ptr(); 0 for an absent optional buffer); dtypes are
// blkit::cpu::DType codes (0 byte, 1 int16, 2 int32, 3 int64, 4 float16, 5 bfloat16, 6 float32,
// 7 float64). The Python caller guarantees contiguity, sizes and dtypes (blkit/_backends/cpu/ops.py).
#include "bindings.h"

#include <string>

#include "blkit/blkit.h"

namespace blkit_py {


void bind_cpu(py::module_& m) {
  m.def(
      "pack_bits",
      [](std::uintptr_t bits_ptr, std::uintptr_t packed_ptr, std::int64_t rows, std::int64_t num_bits, int dtype) {
        blkit::cpu::pack_bits_typed(as_ptr<const void>(bits_ptr), as_dtype(dtype), as_ptr<std::uint8_t>(packed_ptr),
                                    rows, num_bits);
      },
      py::arg("bits_ptr"), py::arg("packed_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("dtype") = 0,
      release(),
      "Pack [rows, num_bits] of dtype (nonzero = 1) into uint8 [rows, ceil(num_bits/8)], little-endian bits.");

  m.def(
      "unpack_bits",
      [](std::uintptr_t packed_ptr, std::uintptr_t bits_ptr, std::int64_t rows, std::int64_t num_bits, int dtype) {
        blkit::cpu::unpack_bits_typed(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<void>(bits_ptr),
                                      as_dtype(dtype), rows, num_bits);
      },
      py::arg("packed_ptr"), py::arg("bits_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("dtype") = 0,
      release(), "Unpack uint8 [rows, ceil(num_bits/8)] into 0/1 [rows, num_bits] of dtype; padding ignored.");

  m.def(
      "uniform",
      [](std::uintptr_t out_ptr, std::int64_t n, std::uint64_t seed, std::uint64_t offset) {
        blkit::cpu::uniform(as_ptr<float>(out_ptr), n, seed, offset);
      },
      py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"), release(),
      "out[i] = tl.rand(seed, offset + i) as float32 for i < n; seed, offset in [0, 2**64).");

  m.def(
      "xor_bits",
      [](std::uintptr_t a_ptr, std::uintptr_t b_ptr, std::uintptr_t out_ptr, std::int64_t n, int dtype,
         bool bitwise) {
        if (bitwise) {
          blkit::cpu::xor_bytes(as_ptr<const std::uint8_t>(a_ptr), as_ptr<const std::uint8_t>(b_ptr),
                                as_ptr<std::uint8_t>(out_ptr), n);
        } else {
          blkit::cpu::xor_nonzero(as_ptr<const void>(a_ptr), as_ptr<const void>(b_ptr), as_dtype(dtype),
                                  as_ptr<std::uint8_t>(out_ptr), n);
        }
      },
      py::arg("a_ptr"), py::arg("b_ptr"), py::arg("out_ptr"), py::arg("n"), py::arg("dtype"), py::arg("bitwise"),
      release(), "bitwise: out = a ^ b on bytes; else out = (a != 0) ^ (b != 0) as uint8, a and b of dtype.");

  m.def(
      "popcount",
      [](std::uintptr_t packed_ptr, std::uintptr_t out_ptr, std::int64_t outer, std::int64_t dim,
         std::int64_t inner) {
        blkit::cpu::popcount(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<std::int64_t>(out_ptr), outer, dim,
                             inner);
      },
      py::arg("packed_ptr"), py::arg("out_ptr"), py::arg("outer"), py::arg("dim"), py::arg("inner"), release(),
      "int64 out[outer, inner] = set bits of uint8 [outer, dim, inner] summed over dim.");

  m.def(
      "bernoulli",
      [](std::uintptr_t probs_ptr, int dtype, std::uintptr_t out_ptr, std::int64_t rows, std::int64_t num_bits,
         bool packed, std::uint64_t seed, std::uint64_t offset) {
        blkit::cpu::bernoulli(as_ptr<const void>(probs_ptr), as_dtype(dtype), as_ptr<std::uint8_t>(out_ptr), rows,
                              num_bits, packed, seed, offset);
      },
      py::arg("probs_ptr"), py::arg("dtype"), py::arg("out_ptr"), py::arg("rows"), py::arg("num_bits"),
      py::arg("packed"), py::arg("seed"), py::arg("offset"), release(),
      "uint8 (u < float(p)) over [rows, num_bits], dense or packed.");

  m.def(
      "binary_quantize",
      [](std::uintptr_t probs_ptr, int dtype, std::uintptr_t out_ptr, std::int64_t n, bool deterministic,
         std::uint64_t seed, std::uint64_t offset) {
        blkit::cpu::binary_quantize(as_ptr<const void>(probs_ptr), as_dtype(dtype), as_ptr<void>(out_ptr), n,
                                    deterministic, seed, offset);
      },
      py::arg("probs_ptr"), py::arg("dtype"), py::arg("out_ptr"), py::arg("n"), py::arg("deterministic"),
      py::arg("seed"), py::arg("offset"), release(), "(u < p) or (p > 0.5) as 0/1 in probs' dtype.");

  m.def(
      "q_sample",
      [](std::uintptr_t x0_ptr, int x0_dtype, std::uintptr_t coef_ptr, std::int64_t coef_rows,
         std::uintptr_t x_t_ptr, std::uintptr_t residual_ptr, std::uintptr_t flips_ptr, std::int64_t batch,
         std::int64_t rows, std::int64_t num_bits, bool packed, std::uint64_t seed, std::uint64_t offset) {
        const blkit::cpu::QSampleArgs a{
            q_sample_inputs(x0_ptr, x0_dtype, coef_ptr, coef_rows, batch, rows, num_bits, packed), seed, offset};
        blkit::cpu::q_sample(a, as_ptr<std::uint8_t>(x_t_ptr), as_ptr<std::uint8_t>(residual_ptr),
                             as_ptr<std::int64_t>(flips_ptr));
      },
      py::arg("x0_ptr"), py::arg("x0_dtype"), py::arg("coef_ptr"), py::arg("coef_rows"), py::arg("x_t_ptr"),
      py::arg("residual_ptr"), py::arg("flips_ptr"), py::arg("batch"), py::arg("rows"), py::arg("num_bits"),
      py::arg("packed"), py::arg("seed"), py::arg("offset"), release(),
      "Forward noising: x_t, residual (dense or packed) and int64 flips per sample.");

  auto step = [](bool sample) {
    return [sample](std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr, int x_dtype, bool packed,
                    std::uintptr_t coef_ptr, std::int64_t coef_rows, std::int64_t batch, std::int64_t rows,
                    std::int64_t num_bits, double temperature, bool p_flip, std::uintptr_t uncond_ptr,
                    int uncond_dtype, double guidance_scale, std::uintptr_t mask_ptr, int mask_dtype,
                    std::uintptr_t known_ptr, int known_dtype, std::uintptr_t out_ptr, std::uint64_t seed,
                    std::uint64_t offset) {
      const blkit::cpu::StepArgs a{step_inputs(logits_ptr, logits_dtype, x_t_ptr, x_dtype, packed, coef_ptr,
                                               coef_rows, batch, rows, num_bits, temperature, p_flip, uncond_ptr,
                                               uncond_dtype, guidance_scale, mask_ptr, mask_dtype, known_ptr,
                                               known_dtype),
                                   seed, offset};
      if (sample) {
        blkit::cpu::sample_step(a, as_ptr<std::uint8_t>(out_ptr));
      } else {
        blkit::cpu::posterior(a, as_ptr<float>(out_ptr));
      }
    };
  };
  const char* step_doc =
      "One reverse step over logits [rows, num_bits] (x_t dense or packed); posterior writes float32 "
      "P(x_{t'} = 1), sample_step writes uint8 x_{t'} (packed when packed).";
  for (const bool sample : {false, true}) {
    m.def(sample ? "sample_step" : "posterior", step(sample), py::arg("logits_ptr"), py::arg("logits_dtype"),
          py::arg("x_t_ptr"), py::arg("x_dtype"), py::arg("packed"), py::arg("coef_ptr"), py::arg("coef_rows"),
          py::arg("batch"), py::arg("rows"), py::arg("num_bits"), py::arg("temperature"), py::arg("p_flip"),
          py::arg("uncond_ptr") = 0, py::arg("uncond_dtype") = 6, py::arg("guidance_scale") = 0.0,
          py::arg("mask_ptr") = 0, py::arg("mask_dtype") = 0, py::arg("known_ptr") = 0, py::arg("known_dtype") = 0,
          py::arg("out_ptr"), py::arg("seed") = 0, py::arg("offset") = 0, release(), step_doc);
  }

  m.def(
      "diffusion_loss",
      [](std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr, int x_dtype, std::uintptr_t x0_ptr,
         int x0_dtype, std::uintptr_t coef_ptr, std::int64_t coef_rows, std::int64_t batch, std::int64_t n,
         bool p_flip, bool balance, double gamma, double aux_weight, int reduction, std::uintptr_t loss_ptr,
         std::uintptr_t grad_ptr) {
        const blkit::cpu::LossArgs a = loss_args(logits_ptr, logits_dtype, x_t_ptr, x_dtype, x0_ptr, x0_dtype,
                                                 coef_ptr, coef_rows, batch, n, p_flip, balance, gamma, aux_weight,
                                                 reduction);
        blkit::cpu::diffusion_loss(a, as_ptr<float>(loss_ptr), grad_ptr == 0 ? nullptr : as_ptr<float>(grad_ptr));
      },
      py::arg("logits_ptr"), py::arg("logits_dtype"), py::arg("x_t_ptr"), py::arg("x_dtype"), py::arg("x0_ptr"),
      py::arg("x0_dtype"), py::arg("coef_ptr"), py::arg("coef_rows"), py::arg("batch"), py::arg("n"),
      py::arg("p_flip"), py::arg("balance"), py::arg("gamma"), py::arg("aux_weight"), py::arg("reduction"),
      py::arg("loss_ptr"), py::arg("grad_ptr"), release(),
      "Training loss (reduction 0 mean, 1 sum, 2 none) and, when grad_ptr != 0, d loss / d logits (float32).");

  m.def("cpu_isa", []() { return std::string(blkit::cpu::isa()); },
        "Instruction set of the CPU kernels in use: avx512, avx2 or generic.");
  m.def("cpu_set_isa", [](const std::string& name) { return blkit::cpu::set_isa(name.c_str()); }, py::arg("name"),
        "Use the kernels of an instruction set (auto, avx512, avx2, generic); False if unsupported here.");
  m.def("cpu_set_num_threads", &blkit::cpu::set_num_threads, py::arg("num_threads"),
        "Threads of the CPU kernels (0 = OpenMP default); returns the previous setting.");
}

}  // namespace blkit_py
