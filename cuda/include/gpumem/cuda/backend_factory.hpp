#pragma once
// Picks a device backend by name: "auto" (CUDA where a driver and a VMM-capable
// device exist, otherwise host), "host" or "cuda".

#include <memory>
#include <string>

#include "gpumem/cuda/cuda_backend_options.hpp"
#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/cuda/host_backend.hpp"

namespace gpumem::cuda {

struct backend_choice {
  std::unique_ptr<device_backend> backend;
  std::string reason;  // one line: which backend was chosen and why
};

/// `kind` is "auto", "host" or "cuda"; anything else is CUDA_ERROR_INVALID_VALUE.
/// `host_config` shapes the host backend when it is chosen, `cuda_options` the CUDA one.
result<backend_choice> make_backend(const std::string& kind,
                                    const host_backend_config& host_config = {},
                                    const cuda_backend_options& cuda_options = {});

} // namespace gpumem::cuda
