#pragma once
// A runtime in another process, served by `gpumem node`, as an endpoint: every client
// (blocking, Asio) works over it unchanged.
//
//   caf::actor_system_config cfg;
//   cfg.load<caf::io::middleman>();
//   messages::register_protocol(cfg);
//   caf::actor_system sys{cfg};
//   auto node = client::connect_node(sys, "127.0.0.1", 9471);
//   if (!node) log(node.error().to_string());   // "node_unreachable: ..."
//   client::blocking_client c{node->endpoint};

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor_system.hpp>

#include "gpumem/client/endpoint.hpp"
#include "gpumem/client/result.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::client {

struct remote_node {
  /// The runtime's handles as proxies, with the node's own deadlines. Every call
  /// carries one (answers_by_deadline is false): a lost peer sends nothing.
  client::endpoint endpoint;
  messages::node_actor node;
  messages::node_info info;  // as the node answered when connected
};

/// Connects to the node at host:port through `sys`'s network layer (over TLS where
/// `sys` has CAF's openssl module: messages::use_tls), checks that it serves this
/// protocol's node interface, and asks it for the runtime's handles, all by `deadline`. Fails with node_unreachable where nothing answers, the handshake
/// does not finish in time, or the peer is not a gpumem node; with invalid_config
/// where `sys` has no network layer (load caf::io::middleman).
result<remote_node> connect_node(caf::actor_system& sys, const std::string& host,
                                 std::uint16_t port,
                                 std::chrono::milliseconds deadline = std::chrono::seconds{10});

/// Connects to the cluster published at host:port (gpumem cluster) the same way, by
/// `deadline`. Every request to it then needs a deadline of its own: a lost peer sends
/// nothing.
result<messages::cluster_actor> connect_cluster(
  caf::actor_system& sys, const std::string& host, std::uint16_t port,
  std::chrono::milliseconds deadline = std::chrono::seconds{10});

} // namespace gpumem::client
