#pragma once
// The runtime's configuration as the commands that run a runtime read it: the file and
// the command line through gpumem_config, every value checked.

#include <optional>
#include <string>
#include <vector>

#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::tool {

/// Parses `args` into `cfg` (which the caller may have loaded modules into first) and
/// answers the checked configuration; nothing when --help or --dump-config printed
/// its text and the command should exit 0. Throws std::invalid_argument on a bad
/// option, with gpumem_config's message.
std::optional<actors::runtime_config> read_runtime_config(actors::gpumem_config& cfg,
                                                          const std::vector<std::string>& args);

} // namespace gpumem::tool
