#include "gpumem/cuda/backend_factory.hpp"

#ifdef GPUMEM_WITH_CUDA
#include "gpumem/cuda/cuda_driver_backend.hpp"
#endif

namespace gpumem::cuda {

namespace {

backend_choice host_choice(const host_backend_config& config, std::string why) {
  auto devices = config.devices.size();
  return {std::make_unique<host_backend>(config),
          "host backend (" + std::to_string(devices) + " emulated device"
            + (devices == 1 ? "" : "s") + ")" + why};
}

#ifdef GPUMEM_WITH_CUDA
/// The CUDA backend if a driver and at least one VMM-capable device exist.
result<backend_choice> cuda_choice(const cuda_backend_options& options) {
  auto opened = cuda_driver_backend::open(options);
  if (!opened)
    return opened.error();
  auto& backend = *opened;
  auto count = backend->device_count();
  if (!count)
    return count.error();
  if (*count == 0)
    return device_error{error_code::no_device, "the CUDA driver sees no device"};
  for (int device = 0; device < *count; ++device) {
    auto props = backend->properties(device);
    if (!props)
      return props.error();
    if (!props->vmm_supported)
      return device_error{error_code::not_supported,
                          "device " + std::to_string(device) + " (" + props->name
                            + ") lacks virtual memory management"};
  }
  auto name = backend->properties(0)->name;
  return backend_choice{std::move(backend),
                        "cuda backend (" + std::to_string(*count) + " device"
                          + (*count == 1 ? "" : "s") + ", " + name
                          + (options.peer_access ? ", peers granted access" : "") + ")"};
}
#else
result<backend_choice> cuda_choice(const cuda_backend_options&) {
  return device_error{error_code::driver_unavailable,
                      "this build has no CUDA backend (cuda.h was not found at configure "
                      "time); use the host backend (--backend host)"};
}
#endif

} // namespace

result<backend_choice> make_backend(const std::string& kind,
                                    const host_backend_config& host_config,
                                    const cuda_backend_options& cuda_options) {
  if (kind == "host")
    return host_choice(host_config, "");
  if (kind == "cuda")
    return cuda_choice(cuda_options);
  if (kind == "auto") {
    auto cuda = cuda_choice(cuda_options);
    if (cuda)
      return std::move(cuda).value();
    return host_choice(host_config, ", chosen because CUDA is unusable: " + cuda.error().to_string());
  }
  return device_error{error_code::invalid_value,
                      "unknown backend '" + kind + "' (expected auto, host or cuda)"};
}

} // namespace gpumem::cuda
