#pragma once
// A cluster for tests: spawned in this process over `gpumem node` children, or reached
// where one serves it (gpumem node --cluster), with helpers that wait, bounded in time,
// for the health of nodes and the state of their devices.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "gpumem/actors/cluster.hpp"
#include "gpumem/client/remote_node.hpp"
#include "node/node_child.hpp"
#include "node/node_fixture.hpp"
#include "support/wait.hpp"

namespace gpumem::test {

using namespace std::chrono_literals;

inline std::string address_of(const node_child& n) { return n.address(); }

/// A gpumem error as "code: message".
inline std::string why(const caf::error& e) {
  auto code = messages::gpumem_code(e).value_or(messages::gpumem_errc::device_failure);
  return messages::to_string(code) + std::string{": "} + messages::error_message(e);
}

/// What to place where (named: GCC 12 at -O3 thinks a braced temporary's string may be
/// used uninitialized inside Catch2's macros).
inline messages::placement_request place(std::uint64_t size, std::string tag,
                                         std::string node) {
  messages::placement_request r;
  r.request.size = size;
  r.request.tag = std::move(tag);
  r.node = std::move(node);
  return r;
}

/// Where another process serves a cluster: its loopback port, and TLS files if any.
struct served_at {
  std::uint16_t port = 0;
  messages::tls_files tls;
};

/// The cluster: in this process with a fast heartbeat and a short deadline, or reached
/// over the network.
struct cluster_fixture {
  networked_config cfg;
  caf::actor_system sys{cfg};
  messages::cluster_actor cluster;
  bool owned = true;  // spawned here, not reached over the network

  explicit cluster_fixture(std::vector<std::string> nodes) {
    actors::cluster_options options;
    options.nodes = std::move(nodes);
    options.heartbeat = 100ms;
    options.deadline = 1000ms;
    cluster = actors::spawn_cluster(sys, options);
  }
  /// The cluster another process serves.
  explicit cluster_fixture(const served_at& where) : cfg(where.tls), owned(false) {
    auto reached = client::connect_cluster(sys, "127.0.0.1", where.port);
    INFO((reached ? std::string{} : reached.error().message));
    REQUIRE(reached);
    cluster = *reached;
  }
  ~cluster_fixture() {
    if (owned)
      caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
  }

  /// Asks the cluster; the answer or its error, by a deadline far beyond any step.
  template <class T, class... Ts>
  caf::expected<T> ask(Ts&&... xs) {
    caf::scoped_actor self{sys};
    caf::expected<T> out{caf::error{}};
    self->request(cluster, 30s, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  messages::cluster_status status() {
    auto s = ask<messages::cluster_status>(messages::status_atom::value);
    INFO((s ? std::string{} : sys.render(s.error())));
    REQUIRE(s);
    return *s;
  }
  const messages::cluster_node* find(const messages::cluster_status& s,
                                     const std::string& address) {
    for (const auto& n : s.nodes)
      if (n.address == address)
        return &n;
    return nullptr;
  }
  void wait_health(const std::string& address, messages::node_health health) {
    wait_until(
      "node " + address + " to be " + messages::to_string(health),
      [&] {
        auto s = status();
        auto* n = find(s, address);
        return n != nullptr && n->health == health;
      },
      [&] {
        auto s = status();
        auto* n = find(s, address);
        return n ? std::string{messages::to_string(n->health)} + ": " + n->cause : "not known";
      });
  }
  /// Every device of the node, as its last heartbeat answered, is in `state`.
  void wait_devices(const std::string& address, messages::device_state state) {
    wait_until("node " + address + "'s devices to be " + messages::to_string(state), [&] {
      auto s = status();
      auto* n = find(s, address);
      if (n == nullptr || n->health != messages::node_health::up || n->info.devices.empty())
        return false;
      for (const auto& d : n->info.devices)
        if (d.state != state)
          return false;
      return true;
    });
  }
  caf::expected<std::vector<messages::node_transition>>
  collective(messages::transition_kind kind, std::vector<std::string> nodes = {}) {
    messages::collective_request r;
    r.kind = kind;
    r.policy = messages::sleep_policy::at_level(1);
    r.nodes = std::move(nodes);
    return ask<std::vector<messages::node_transition>>(messages::collective_atom::value, r);
  }
};

} // namespace gpumem::test
