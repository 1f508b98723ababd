#pragma once
// The node: one runtime served over CAF's network layer, so that clients in other
// processes reach it through the same typed interfaces as clients in this one
// (client::remote_endpoint). The node actor (messages::node_actor) answers what the
// node is and hands out the runtime's handles; publish_node() opens its port.

#include <chrono>
#include <set>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/messages/actors.hpp"
#include "gpumem/messages/tls.hpp"

namespace gpumem::actors {

/// The node's settings ([gpumem.node]); the one home of their defaults.
struct node_options {
  /// "host:port" the node accepts peers on ("[::1]:9471" too; port 0: any free one).
  /// Loopback by default: without TLS nothing authenticates a peer.
  std::string listen = "127.0.0.1:9471";
  /// Mutual TLS: the node's certificate and key, and the CA that signs its peers'.
  /// All empty: no TLS (loopback only, unless started insecure).
  messages::tls_files tls;
};

/// node_options::listen taken apart.
struct listen_address {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  bool loopback = false;  // 127.0.0.0/8, ::1 or localhost
};

/// "host:port" as listen_address, or why it is not one.
basic_result<listen_address, std::string> parse_listen_address(std::string_view text);

struct node_state {
  static inline const char* name = "gpumem.node";
  // Declared, so that the state is no aggregate: C++20 would let CAF build one from
  // the actor's pointer (its first member), which CAF tries where it can.
  node_state() = default;
  messages::balancer_actor balancer;
  std::vector<messages::device_allocator_actor> allocators;
  messages::pressure_monitor_actor monitor;
  messages::node_info info;  // its devices are asked of the balancer at each request
};

using node_pointer = messages::node_actor::stateful_pointer<node_state>;

/// The actor's function: spawn with sys.spawn(node, balancer, allocators, monitor,
/// request_timeout, transition_timeout), the handles and deadlines of a started
/// runtime. It answers info with the node's identity and the balancer's devices (asked
/// with the request timeout), and endpoint with the handles as well. Stop it with an
/// exit message before the runtime.
messages::node_actor::behavior_type
node(node_pointer self, messages::balancer_actor balancer,
     std::vector<messages::device_allocator_actor> allocators,
     messages::pressure_monitor_actor monitor, std::chrono::milliseconds request_timeout,
     std::chrono::milliseconds transition_timeout);

/// Opens the node's port (caf::io::middleman must be loaded in `sys`) and answers the
/// port bound: over TLS where `sys` has CAF's openssl module (messages::use_tls with
/// options.tls), else in the clear. In the clear an address beyond loopback is refused
/// unless `insecure`, since nothing would authenticate a peer.
/// What publish_node and publish_cluster share: opens a port at `listen` for `whom`
/// (which serves `interface`), named `setting` in what it answers when it cannot.
basic_result<std::uint16_t, std::string> publish_on(caf::actor_system& sys,
                                                    const caf::strong_actor_ptr& whom,
                                                    std::set<std::string> interface,
                                                    const std::string& setting,
                                                    const std::string& listen, bool insecure);

basic_result<std::uint16_t, std::string> publish_node(caf::actor_system& sys,
                                                      const messages::node_actor& node,
                                                      const node_options& options,
                                                      bool insecure);

} // namespace gpumem::actors
