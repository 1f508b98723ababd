#pragma once
// The cluster: one actor that watches a set of nodes (gpumem node) and serves them as
// one (messages::cluster_actor): status and statistics summed and per node, placement
// of allocations, collective sleep and wake that is all or nothing over the nodes, and
// every node's pressure events. It reaches each node over CAF's network layer (TLS
// where the system has loaded it) and watches it twice: CAF's monitor tells of a link
// that goes down, and a heartbeat with a deadline of a node that stopped answering,
// which a half-open connection never tells. A node that is lost is tried again at every
// heartbeat, so that a node restarted at its address rejoins.

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/messages/actors.hpp"
#include "gpumem/messages/tls.hpp"

namespace gpumem::actors {

/// The cluster's settings ([gpumem.cluster]); the one home of their defaults.
struct cluster_options {
  /// "host:port" of the nodes to watch from the start (more may join while it runs).
  std::vector<std::string> nodes;
  /// How often each node is asked whether it is there.
  std::chrono::milliseconds heartbeat{500};
  /// How long a node may take to answer before it counts as lost; also the deadline
  /// of the cluster's requests to a node, except a collective's, which waits for the
  /// node's own transition timeout.
  std::chrono::milliseconds deadline{2000};
  /// "host:port" gpumem cluster accepts clients on (loopback unless TLS or --insecure).
  std::string listen = "127.0.0.1:9472";
  /// Mutual TLS with nodes and clients alike (all empty: none).
  messages::tls_files tls;
};

/// A node in the cluster's own process (gpumem node --cluster): watched through its
/// handle, not over the network, under the address it is published at.
struct local_node {
  std::string address;  // "host:port", its name in the cluster
  messages::node_actor node;
};

/// Spawns a cluster actor in `sys` (which must have loaded caf::io::middleman and
/// registered the protocol) that starts watching options.nodes, and `local` if it has
/// a node, at once. Stop it with an exit message.
messages::cluster_actor spawn_cluster(caf::actor_system& sys, const cluster_options& options,
                                      local_node local = {});

/// Opens the cluster's port as publish_node does a node's (options.listen; beyond
/// loopback only over TLS, or `insecure`); answers the port bound.
basic_result<std::uint16_t, std::string> publish_cluster(caf::actor_system& sys,
                                                         const messages::cluster_actor& cluster,
                                                         const cluster_options& options,
                                                         bool insecure);

} // namespace gpumem::actors
