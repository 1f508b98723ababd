#pragma once
// `gpumem demo`: the device layer end to end on every device of a backend: reserve,
// map, write, back up, unmap and release, map again at the same address, restore,
// verify byte for byte, and report time and bandwidth per step.

#include <cstddef>
#include <string>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::tool {

struct device_demo_options {
  std::string backend = "host";                 // host (the embedded default), cuda, auto
  int host_devices = 2;                         // emulated devices on the host backend
  std::size_t host_capacity = 1 * GiB;          // per emulated device
  std::size_t bytes_per_device = 256 * MiB;     // what is written, backed up and restored
  std::size_t chunk_size = 32 * MiB;            // physical chunk size (rounded to granularity)
};

/// Runs the demo; 0 when every check passed, 1 otherwise.
int run_device_demo(const device_demo_options& options);

} // namespace gpumem::tool
