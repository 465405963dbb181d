// Shared helpers of the pybind11 bindings: buffers cross the boundary as raw addresses (Python ints,
// e.g. tensor.data_ptr()); the Python caller guarantees sizes, dtypes, contiguity and device.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "blkit/cpu.h"

namespace blkit_py {

namespace py = pybind11;
using release = py::call_guard<py::gil_scoped_release>;

template <typename T>
T* as_ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

inline void* as_stream(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

// nullptr for address 0 (an absent optional buffer).
template <typename T>
const T* as_optional(std::uintptr_t address) {
  return address == 0 ? nullptr : reinterpret_cast<const T*>(address);
}

// dtype codes: 0 byte, 1 int16, 2 int32, 3 int64, 4 float16, 5 bfloat16, 6 float32, 7 float64 (blkit/cpu.h).
inline blkit::cpu::DType as_dtype(int code) {
  if (code < 0 || code > 7) throw std::invalid_argument("unknown blkit dtype code " + std::to_string(code));
  return static_cast<blkit::cpu::DType>(code);
}

// The forward-noising inputs both backends take (the CPU adds seed and offset, CUDA the device rng address).
inline blkit::cpu::QSampleInputs q_sample_inputs(std::uintptr_t x0_ptr, int x0_dtype, std::uintptr_t coef_ptr,
                                                 std::int64_t coef_rows, std::int64_t batch, std::int64_t rows,
                                                 std::int64_t num_bits, bool packed) {
  blkit::cpu::QSampleInputs a;
  a.x0 = as_optional<void>(x0_ptr);
  a.x0_dtype = as_dtype(x0_dtype);
  a.coef = as_optional<float>(coef_ptr);
  a.coef_rows = coef_rows;
  a.batch = batch;
  a.rows = rows;
  a.num_bits = num_bits;
  a.packed = packed;
  return a;
}

// The step inputs both backends take (the CPU adds seed and offset, CUDA the device rng address).
inline blkit::cpu::StepInputs step_inputs(std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr,
                                          int x_dtype, bool packed, std::uintptr_t coef_ptr, std::int64_t coef_rows,
                                          std::int64_t batch, std::int64_t rows, std::int64_t num_bits,
                                          double temperature, bool p_flip, std::uintptr_t uncond_ptr, int uncond_dtype,
                                          double guidance_scale, std::uintptr_t mask_ptr, int mask_dtype,
                                          std::uintptr_t known_ptr, int known_dtype) {
  blkit::cpu::StepInputs a;
  a.logits = as_optional<void>(logits_ptr);
  a.logits_dtype = as_dtype(logits_dtype);
  a.x_t = as_optional<void>(x_t_ptr);
  a.x_dtype = as_dtype(x_dtype);
  a.packed = packed;
  a.coef = as_optional<float>(coef_ptr);
  a.coef_rows = coef_rows;
  a.batch = batch;
  a.rows = rows;
  a.num_bits = num_bits;
  a.temperature = static_cast<float>(temperature);
  a.p_flip = p_flip;
  a.uncond_logits = as_optional<void>(uncond_ptr);
  a.uncond_dtype = as_dtype(uncond_dtype);
  a.guidance_scale = static_cast<float>(guidance_scale);
  a.mask = as_optional<void>(mask_ptr);
  a.mask_dtype = as_dtype(mask_dtype);
  a.known = as_optional<void>(known_ptr);
  a.known_dtype = as_dtype(known_dtype);
  return a;
}

// The loss arguments of both backends (reduction codes: 0 mean, 1 sum, 2 none).
inline blkit::cpu::LossArgs loss_args(std::uintptr_t logits_ptr, int logits_dtype, std::uintptr_t x_t_ptr,
                                      int x_dtype, std::uintptr_t x0_ptr, int x0_dtype, std::uintptr_t coef_ptr,
                                      std::int64_t coef_rows, std::int64_t batch, std::int64_t n, bool p_flip,
                                      bool balance, double gamma, double aux_weight, int reduction) {
  if (reduction < 0 || reduction > 2) throw std::invalid_argument("unknown reduction code " + std::to_string(reduction));
  blkit::cpu::LossArgs a;
  a.logits = as_optional<void>(logits_ptr);
  a.logits_dtype = as_dtype(logits_dtype);
  a.x_t = as_optional<void>(x_t_ptr);
  a.x_dtype = as_dtype(x_dtype);
  a.x0 = as_optional<void>(x0_ptr);
  a.x0_dtype = as_dtype(x0_dtype);
  a.coef = as_optional<float>(coef_ptr);
  a.coef_rows = coef_rows;
  a.batch = batch;
  a.n = n;
  a.p_flip = p_flip;
  a.balance = balance;
  a.gamma = static_cast<float>(gamma);
  a.aux_weight = static_cast<float>(aux_weight);
  a.reduction = static_cast<blkit::cpu::Reduction>(reduction);
  return a;
}

void bind_cpu(py::module_& m);
#if defined(BLKIT_WITH_CUDA)
void bind_cuda(py::module_& m);
#endif

}  // namespace blkit_py
