// CUDA kernels of blkit._native (blkit::cuda), compiled only with BLKIT_WITH_CUDA. Device pointers;
// every launch is asynchronous on the stream passed as a raw cudaStream_t address.
#include "bindings.h"

#include "blkit/blkit.h"

namespace blkit_py {

void bind_cuda(py::module_& m) {
  m.def(
      "cuda_pack_bits",
      [](std::uintptr_t bits_ptr, std::uintptr_t packed_ptr, std::int64_t rows, std::int64_t num_bits,
         std::uintptr_t stream_ptr) {
        blkit::cuda::pack_bits(as_ptr<const std::uint8_t>(bits_ptr), as_ptr<std::uint8_t>(packed_ptr), rows,
                               num_bits, as_stream(stream_ptr));
      },
      py::arg("bits_ptr"), py::arg("packed_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("stream_ptr"),
      release(), "CUDA pack_bits on device pointers, asynchronous on stream_ptr (a cudaStream_t).");

  m.def(
      "cuda_unpack_bits",
      [](std::uintptr_t packed_ptr, std::uintptr_t bits_ptr, std::int64_t rows, std::int64_t num_bits,
         std::uintptr_t stream_ptr) {
        blkit::cuda::unpack_bits(as_ptr<const std::uint8_t>(packed_ptr), as_ptr<std::uint8_t>(bits_ptr), rows,
                                 num_bits, as_stream(stream_ptr));
      },
      py::arg("packed_ptr"), py::arg("bits_ptr"), py::arg("rows"), py::arg("num_bits"), py::arg("stream_ptr"),
      release(), "CUDA unpack_bits on device pointers, asynchronous on stream_ptr (a cudaStream_t).");

  m.def(
      "cuda_uniform",
      [](std::uintptr_t out_ptr, std::int64_t n, std::uint64_t seed, std::uint64_t offset,
         std::uintptr_t stream_ptr) {
        blkit::cuda::uniform(as_ptr<float>(out_ptr), n, seed, offset, as_stream(stream_ptr));
      },
      py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"), py::arg("stream_ptr"), release(),
      "CUDA uniform on a device pointer, asynchronous on stream_ptr (a cudaStream_t).");
}

}  // namespace blkit_py
