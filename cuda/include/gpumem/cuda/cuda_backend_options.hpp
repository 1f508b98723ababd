#pragma once
// How the CUDA driver backend opens the driver and creates chunks. Its own header,
// without cuda.h, so that the runtime's configuration can carry it in every build.

#include <string>

namespace gpumem::cuda {

struct cuda_backend_options {
  /// The driver library; empty: $GPUMEM_CUDA_LIBRARY if set (a driver stand-in, or a
  /// driver outside the loader's path), else libcuda.so.1.
  std::string library = {};
  /// Grant every peer device that can access it read-write access too (set_access),
  /// as PyTorch's expandable segments do; off: only the owning device.
  bool peer_access = false;
  /// Chunks exportable as POSIX file descriptors where the device supports it.
  bool exportable = true;
  /// Chunks GPUDirect RDMA capable where the device supports it with VMM.
  bool rdma_capable = true;
};

} // namespace gpumem::cuda
