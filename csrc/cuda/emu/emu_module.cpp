// Python module blkit_cuda_emu: the CUDA bindings (bind_cuda.cpp) over the CPU-emulated kernels (emu.h).
#include <cuda_runtime.h>

#include "bindings.h"
#include "blkit/blkit.h"

namespace py = pybind11;

PYBIND11_MODULE(blkit_cuda_emu, m) {
  m.doc() = "blkit CUDA kernels compiled for a CPU emulation of CUDA (testing only; pointers are host addresses).";
  blkit_py::bind_cuda(m);
  m.def("emu_set_device", [](int device) { emu::g_device = device; }, py::arg("device"),
        "Emulated current device; it has device + 1 SMs (grid sizes scale with it).");
  m.def("emu_launches", []() { return emu::g_launches; }, "Kernel launches so far.");
}
