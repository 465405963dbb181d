// Shared helpers of the pybind11 bindings: buffers cross the boundary as raw addresses (Python ints,
// e.g. tensor.data_ptr()); the Python caller guarantees sizes, dtypes, contiguity and device.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

namespace blkit_py {

namespace py = pybind11;
using release = py::call_guard<py::gil_scoped_release>;

template <typename T>
T* as_ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

inline void* as_stream(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

void bind_cpu(py::module_& m);
#if defined(BLKIT_WITH_CUDA)
void bind_cuda(py::module_& m);
#endif

}  // namespace blkit_py
