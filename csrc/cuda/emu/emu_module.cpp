// Python module blkit_cuda_emu: the CUDA bindings (bind_cuda.cpp) over the CPU-emulated kernels (emu.h).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "bindings.h"
#include "blkit/blkit.h"

namespace blkit {
namespace cpu {
// The one CPU-library function the CUDA sources use (the real one lives in csrc/cpu/dispatch.cpp).
int64_t dtype_size(DType dtype) {
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
}  // namespace cpu
}  // namespace blkit

namespace py = pybind11;

PYBIND11_MODULE(blkit_cuda_emu, m) {
  m.doc() = "blkit CUDA kernels compiled for a CPU emulation of CUDA (testing only; pointers are host addresses).";
  blkit_py::bind_cuda(m);
  m.def("emu_set_device", [](int device) { emu::g_device = device; }, py::arg("device"),
        "Emulated current device; it has device + 1 SMs (grid sizes scale with it).");
  m.def("emu_launches", []() { return emu::g_launches; }, "Kernel launches so far.");
}
