// runtime_config's own methods and the name of its backend kind.

#include "gpumem/actors/runtime_config.hpp"

#include <algorithm>

namespace gpumem::actors {

const char* to_string(backend_kind kind) noexcept {
  for (const auto& [name, value] : backend_kind_names)
    if (value == kind)
      return name.data();
  return "?";
}

std::vector<std::size_t> host_emulation_config::device_capacities() const {
  if (!capacities.empty())
    return capacities;
  return std::vector<std::size_t>(static_cast<std::size_t>(std::max(devices, 0)), capacity);
}

core::engine_config runtime_config::engine_config_for(int device) const {
  auto result = engine;
  result.device = device;
  return result;
}

cuda::host_backend_config runtime_config::host_backend_config() const {
  cuda::host_backend_config result;
  result.devices.clear();
  for (auto capacity : host.device_capacities()) {
    cuda::host_device_config device;
    device.capacity = capacity;
    device.granularity = host.granularity;
    device.recommended_granularity = host.granularity;
    result.devices.push_back(device);
  }
  return result;
}

} // namespace gpumem::actors
