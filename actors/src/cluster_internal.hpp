#pragma once
// What the cluster's source files share: its state, the members it watches, and the
// handlers each file implements. Internal to the actors library.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "gpumem/actors/cluster.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::actors::clustering {

/// Private: time to ask every node whether it is there.
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;

/// The cluster's actor: its public interface, its heartbeat, and the pressure events
/// its forwarders hand it.
using cluster_impl = messages::cluster_actor::extend<
  caf::reacts_to<heartbeat_atom>,
  caf::reacts_to<messages::node_pressure_event>>;

using clock = std::chrono::steady_clock;

/// One node the cluster watches.
struct member {
  std::string address;  // "host:port", its name
  std::string host;
  std::uint16_t port = 0;
  messages::node_health health = messages::node_health::joining;
  std::string cause;
  messages::node_info info;
  std::optional<clock::time_point> seen;  // its last answer
  /// The node of the cluster's own process, reached without the network; null for the
  /// others. Kept while lost, so that a heartbeat can reach it again.
  messages::node_actor in_process;
  // Its handles while up.
  messages::node_actor node;
  messages::balancer_actor balancer;
  std::vector<messages::device_allocator_actor> allocators;
  messages::pressure_monitor_actor monitor;
  caf::actor forwarder;  // subscribed to its monitor; tags its events with its name
  /// Bumped at each attempt to connect: answers of an older attempt or link are late.
  std::uint64_t generation = 0;
  bool connecting = false;
  bool probing = false;
  /// join requests waiting for it to come up or fail.
  std::vector<caf::typed_response_promise<messages::cluster_node>> joiners;
};

/// A collective transition under way (cluster_collective.cpp).
struct collective_run;

struct cluster_state {
  static inline const char* name = "gpumem.cluster";
  // Declared, so that the state is no aggregate (see node_state).
  cluster_state() = default;
  cluster_options options;
  std::vector<member> members;  // in the order they joined
  std::vector<messages::cluster_subscriber_actor> subscribers;
  /// Collectives under way, by transaction: a member lost fails those it is part of.
  std::map<std::uint64_t, std::shared_ptr<collective_run>> collectives;
  std::uint64_t next_transaction = 0;  // from a random start: see cluster.cpp
};

using cluster_pointer = cluster_impl::stateful_pointer<cluster_state>;

member* find_member(cluster_state& st, const std::string& address);
/// The member as status answers it.
messages::cluster_node describe(const member& m);
/// Marks a member lost (no-op unless up or joining with handles): drops its handles,
/// fails the collectives it is part of, and tells whoever waits to join it.
void lose(cluster_pointer self, member& m, const std::string& cause);
/// "node host:port: why" as a node_unreachable error.
caf::error unreachable(const member& m, const std::string& why);
/// A node's error as the cluster answers it: gpumem errors keep their code and gain the
/// node's name; a lost link or a deadline becomes node_unreachable.
caf::error from_node(const member& m, const caf::error& e);

// -- handlers (cluster_requests.cpp) ---------------------------------------------------

caf::result<messages::nodes_statistics> on_stats(cluster_pointer self);
caf::result<messages::placed_region> on_allocate(cluster_pointer self,
                                                 messages::placement_request request);
caf::result<caf::ok_atom> on_deallocate(cluster_pointer self, messages::placed_region placed);

// -- collective sleep and wake (cluster_collective.cpp) ---------------------------------

caf::result<std::vector<messages::node_transition>>
on_collective(cluster_pointer self, messages::collective_request request);
/// A member was lost: every collective it takes part in fails now, naming it.
void fail_collectives_of(cluster_pointer self, const std::string& address,
                         const std::string& cause);

} // namespace gpumem::actors::clustering
