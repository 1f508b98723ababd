#pragma once
// `gpumem cluster`: a cluster actor (gpumem/actors/cluster.hpp) that watches the nodes
// of gpumem.cluster.nodes, and those that join, and serves them as one on
// gpumem.cluster.listen until SIGINT or SIGTERM. It prints the address it listens on,
// and can write its port to a file (for port 0). `gpumem node --cluster` runs the same
// cluster inside a node, watching that node too.

#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "gpumem/actors/cluster.hpp"

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

/// Spawns the cluster in `sys` (TLS, when options.tls names files, already loaded),
/// watching `local` too where it has a node, publishes it on options.listen and
/// announces it. Null, after logging why, when it could not listen or write the port.
messages::cluster_actor serve_cluster(caf::actor_system& sys,
                                      const actors::cluster_options& options, bool insecure,
                                      actors::local_node local, const std::string& port_file);

} // namespace gpumem::tool
