// [gpumem.host]: the host backend's emulated devices, their capacities and
// granularity.

#include <cstddef>
#include <string>

#include "config_reader.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::actors::detail {

void read_host_section(const reader& in, runtime_config& config) {
  const runtime_config defaults;
  auto& host = config.host;
  host.granularity = in.size("gpumem.host.granularity", defaults.host.granularity);
  if (!power_of_two(host.granularity) || host.granularity < 2 * MiB)
    in.fail("gpumem.host.granularity", "expected a power of two of at least 2M, got "
                                          + format_bytes(host.granularity));
  auto devices = in.integer("gpumem.host.devices", 2);
  auto capacity = in.size("gpumem.host.capacity", 1 * GiB);
  auto capacities = in.size_list("gpumem.host.capacities", {});
  if (!capacities.empty()) {
    if (in.has("gpumem.host.capacity"))
      in.fail("gpumem.host.capacities",
              "give either gpumem.host.capacity (one for all) or gpumem.host.capacities "
              "(one per device), not both");
    if (in.has("gpumem.host.devices") && capacities.size() != static_cast<std::size_t>(devices))
      in.fail("gpumem.host.capacities",
              "lists " + std::to_string(capacities.size()) + " capacities but gpumem.host.devices is "
                + std::to_string(devices));
    if (capacities.size() > 64)
      in.fail("gpumem.host.capacities",
              "lists " + std::to_string(capacities.size()) + " devices; at most 64");
    host.capacities = capacities;
  } else {
    host.capacities.assign(static_cast<std::size_t>(devices), capacity);
  }
  for (std::size_t i = 0; i < host.capacities.size(); ++i) {
    auto c = host.capacities[i];
    if (c == 0 || c % host.granularity != 0) {
      auto key = capacities.empty() ? "gpumem.host.capacity" : "gpumem.host.capacities";
      in.fail(key, "device " + std::to_string(i) + ": expected a non-zero multiple of the granularity "
                     + format_bytes(host.granularity) + ", got " + std::to_string(c) + " bytes");
    }
  }
}

} // namespace gpumem::actors::detail
