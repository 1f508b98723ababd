#pragma once
// `gpumem node`: the runtime from the configuration, served over CAF's network layer
// on gpumem.node.listen (gpumem/actors/node.hpp) until SIGINT or SIGTERM, for clients
// in other processes (client::connect_node). It prints the address it listens on, and
// can write its port to a file (for port 0). With --cluster it also hosts a cluster
// (tool/cluster.hpp) that watches this node and those of gpumem.cluster.nodes.

#include <string>
#include <vector>

namespace gpumem::tool {

struct node_command_options {
  /// For gpumem_config::parse_command_line: --config-file=PATH, --gpumem.group.key=value.
  std::vector<std::string> runtime_args;
  /// Where to write the port once listening; empty: nowhere.
  std::string port_file;
  /// Listen beyond loopback without TLS, although nothing then authenticates a peer.
  bool insecure = false;
  /// Host a cluster too, on gpumem.cluster.listen.
  bool cluster = false;
  /// Where to write the cluster's port once listening; empty: nowhere.
  std::string cluster_port_file;
};

/// Serves until a signal; 0 after a clean stop, 1 when the runtime or the network
/// layer could not start. Throws std::invalid_argument on a bad runtime option.
int run_node(const node_command_options& options);

} // namespace gpumem::tool
