// CPU kernels of blkit._native (blkit::cpu); all buffer functions release the GIL.
#include "bindings.h"

#include "blkit/blkit.h"

namespace blkit_py {

void bind_cpu(py::module_& m) {
  m.def(
      "pack_bits",
      [](std::uintptr_t bits_ptr, std::uintptr_t packed_ptr, std::int64_t rows, std::int64_t num_bits) {
        blkit::cpu::pack_bits(as_ptr<const std::uint8_t>(bits_ptr), as_ptr<std::uint8_t>(packed_ptr), rows,
                              num_bits);
      },
      py::arg("bits_ptr"), py::arg("packed_ptr"), py::arg("rows"), py::arg("num_bits"), release(),
      "Pack uint8 [rows, num_bits] (nonzero = 1) into uint8 [rows, ceil(num_bits/8)], little-endian bits.");

  m.def(
      "unpack_bits",
      [](std::uintptr_t packed_ptr, std::uintptr_t bits_ptr, std::int64_t rows, std::int64_t num_bits) {
        blkit::cpu::unpack_bits(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<std::uint8_t>(bits_ptr), rows,
                                num_bits);
      },
      py::arg("packed_ptr"), py::arg("bits_ptr"), py::arg("rows"), py::arg("num_bits"), release(),
      "Unpack uint8 [rows, ceil(num_bits/8)] into 0/1 uint8 [rows, num_bits]; padding bits ignored.");

  m.def(
      "uniform",
      [](std::uintptr_t out_ptr, std::int64_t n, std::uint64_t seed, std::uint64_t offset) {
        blkit::cpu::uniform(as_ptr<float>(out_ptr), n, seed, offset);
      },
      py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"), release(),
      "out[i] = tl.rand(seed, offset + i) as float32 for i < n; seed, offset in [0, 2**64).");
}

}  // namespace blkit_py
