#pragma once
// The backend the conformance suite runs against, chosen on the command line.

#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/cuda/host_backend.hpp"

namespace gpumem::test {

cuda::device_backend& conformance_backend();

/// Two emulated devices, the second with a finer granularity, so that the suite
/// meets granularities other than 2 MiB.
inline cuda::host_backend_config conformance_host_config() {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{256 * MiB, 2 * MiB, 2 * MiB},
                    cuda::host_device_config{64 * MiB, 64 * KiB, 2 * MiB}};
  return config;
}

} // namespace gpumem::test
