// runtime_config's own methods and the names of its enums.

#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors {

// -- names --------------------------------------------------------------------------

const char* to_string(backend_kind kind) noexcept {
  switch (kind) {
    case backend_kind::automatic: return "auto";
    case backend_kind::host: return "host";
    case backend_kind::cuda: return "cuda";
  }
  return "?";
}

const char* to_string(routing_policy policy) noexcept {
  switch (policy) {
    case routing_policy::least_loaded: return "least-loaded";
    case routing_policy::round_robin: return "round-robin";
    case routing_policy::tag_affinity: return "tag-affinity";
  }
  return "?";
}

const char* to_string(asleep_behaviour behaviour) noexcept {
  switch (behaviour) {
    case asleep_behaviour::queue: return "queue";
    case asleep_behaviour::fail: return "fail";
  }
  return "?";
}

// -- runtime_config -----------------------------------------------------------------

core::strategy runtime_config::strategy_for(std::string_view tag) const {
  auto i = tag_strategies.find(tag);
  return i == tag_strategies.end() ? default_strategy : i->second;
}

core::engine_config runtime_config::engine_config_for(int device) const {
  auto result = engine;
  result.device = device;
  return result;
}

cuda::host_backend_config runtime_config::host_backend_config() const {
  cuda::host_backend_config result;
  result.devices.clear();
  for (auto capacity : host.capacities) {
    cuda::host_device_config device;
    device.capacity = capacity;
    device.granularity = host.granularity;
    device.recommended_granularity = host.granularity;
    result.devices.push_back(device);
  }
  return result;
}

} // namespace gpumem::actors
