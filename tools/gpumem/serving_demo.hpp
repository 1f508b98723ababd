#pragma once
// `gpumem demo`: a serving-and-training day on the actor runtime. It starts the
// runtime (backend, engines, device allocators, balancer, pressure monitor) from
// gpumem_config, then: (1) loads model weights on every device through the balancer
// and fills them with a known pattern; (2) serves a burst of concurrent clients
// allocating and freeing KV-cache blocks; (3) pushes device 0 into pressure with
// memory taken outside the runtime and shows the monitor's events and the
// allocators' trims; (4) runs an RL cycle: sleep, a trainer borrows the memory,
// wake, and the weights are verified byte for byte at the same addresses.

#include <cstddef>
#include <string>
#include <vector>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::tool {

struct serving_options {
  /// For gpumem_config::parse_command_line: --config-file=PATH, --gpumem.group.key=value.
  std::vector<std::string> runtime_args;
  int clients = 32;
  int rounds = 8;
  int blocks = 4;                     // KV blocks a client holds per round
  std::size_t kv_block = 2 * MiB;
  int weight_tensors = 8;
  std::size_t weight_size = 32 * MiB;
};

/// Runs the serving day. Returns 0 when every check passed, 1 when one failed;
/// throws std::invalid_argument on a bad runtime option.
int run_serving_demo(const serving_options& options);

} // namespace gpumem::tool
