#pragma once
// `gpumem cluster`: a cluster actor (gpumem/actors/cluster.hpp) that watches the nodes
// of gpumem.cluster.nodes, and those that join, and serves them as one on
// gpumem.cluster.listen until SIGINT or SIGTERM. It prints the address it listens on,
// and can write its port to a file (for port 0).

#include <string>
#include <vector>

namespace gpumem::tool {

struct cluster_command_options {
  /// For gpumem_config::parse_command_line: --config-file=PATH, --gpumem.group.key=value.
  std::vector<std::string> runtime_args;
  /// Where to write the port once listening; empty: nowhere.
  std::string port_file;
  /// Listen beyond loopback without TLS, although nothing then authenticates a peer.
  bool insecure = false;
};

/// Serves until a signal; 0 after a clean stop, 1 when the network layer could not
/// start. Throws std::invalid_argument on a bad option.
int run_cluster(const cluster_command_options& options);

} // namespace gpumem::tool
