#pragma once
// `gpumem demo`: a serving-and-training day on the actor runtime. It starts the
// runtime (backend, engines, device allocators, balancer, pressure monitor) from
// gpumem_config, then: (1) loads model weights on every device through the balancer
// and fills them with a known pattern; (2) serves a burst of concurrent clients
// allocating and freeing KV-cache blocks; (3) pushes device 0 into pressure with
// memory taken outside the runtime and shows the monitor's events and the
// allocators' trims; (4) runs an RL cycle: sleep, a trainer borrows the memory,
// wake, and the weights are verified byte for byte at the same addresses.

#include <string>
#include <vector>

namespace gpumem::tool {

/// Runs the serving day with the demo's command-line options (after `demo`):
/// --backend, --devices, --capacity, --clients, --rounds, --blocks, plus
/// --config-file=PATH and CAF-style --gpumem.group.key=value overrides.
/// Returns 0 when every check passed, 1 when one failed; throws
/// std::invalid_argument on a bad option.
int run_serving_demo(const std::vector<std::string>& args);

} // namespace gpumem::tool
