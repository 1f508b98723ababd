#pragma once
// `gpumem serve`: the runtime from the configuration, served over HTTP on
// gpumem.control.listen (the control plane, gpumem/control/server.hpp) until SIGINT or
// SIGTERM. It prints the address it listens on, and can write its port to a file
// (for port 0) and hold regions allocated at start, so that a sleep and a wake have
// memory to move without an engine, or free them at once, so that a trim or the
// memory map has cached segments to show.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace gpumem::tool {

struct serve_options {
  /// For gpumem_config::parse_command_line: --config-file=PATH, --gpumem.group.key=value.
  std::vector<std::string> runtime_args;
  /// Regions allocated at start and held: (tag, bytes).
  std::vector<std::pair<std::string, std::size_t>> allocations;
  /// Regions allocated at start, after those held, and freed at once: (tag, bytes).
  std::vector<std::pair<std::string, std::size_t>> cached;
  /// Where to write the port once listening; empty: nowhere.
  std::string port_file;
};

/// Serves until a signal; 0 after a clean stop, 1 when the runtime or the server
/// could not start. Throws std::invalid_argument on a bad runtime option.
int run_serve(const serve_options& options);

} // namespace gpumem::tool
