#include "gpumem/client/remote_node.hpp"

#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "gpumem/messages/tls.hpp"

namespace gpumem::client {

using namespace messages;

namespace {

std::string why(caf::actor_system& sys, const caf::error& e) {
  return e == caf::sec::request_timeout ? std::string{"no answer before the deadline"}
                                        : sys.render(e);
}

failure unreachable(const std::string& what, const std::string& why) {
  return failure{gpumem_errc::node_unreachable, what + ": " + why};
}

/// The actor published at host:port, if it serves `interface`, by `until`. The
/// middleman's own remote_actor() waits without a deadline: this asks the manager
/// directly (its TLS twin where the system has CAF's openssl module).
result<caf::strong_actor_ptr> connect_published(caf::actor_system& sys, const std::string& host,
                                                std::uint16_t port,
                                                std::chrono::milliseconds deadline,
                                                const std::set<std::string>& expected,
                                                const std::string& what,
                                                const std::string& kind) {
  if (!sys.has_middleman())
    return failure{gpumem_errc::invalid_config,
                   "the actor system has no network layer: load caf::io::middleman"};
  caf::scoped_actor self{sys, true};
  std::optional<failure> failed;
  caf::strong_actor_ptr published;
  std::set<std::string> interface;
  self->request(network_manager(sys), deadline, caf::connect_atom::value, host, port)
    .receive(
      [&](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>& ifs) {
        published = std::move(ptr);
        interface = std::move(ifs);
      },
      [&](caf::error& e) { failed = unreachable(what, why(sys, e)); });
  if (failed)
    return *failed;
  if (!published)
    return unreachable(what, "nothing is published there");
  if (!sys.assignable(interface, expected))
    return unreachable(what, "not a " + kind + " of this protocol");
  return published;
}

} // namespace

result<remote_node> connect_node(caf::actor_system& sys, const std::string& host,
                                 std::uint16_t port, std::chrono::milliseconds deadline) {
  const auto what = "node " + host + ":" + std::to_string(port);
  const auto until = std::chrono::steady_clock::now() + deadline;
  auto left = [&] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                      until - std::chrono::steady_clock::now()),
                    std::chrono::milliseconds{1});
  };
  auto published = connect_published(sys, host, port, left(),
                                     sys.message_types<node_actor>(), what, "gpumem node");
  if (!published)
    return published.error();

  remote_node out;
  out.node = caf::actor_cast<node_actor>(std::move(published).value());
  std::optional<failure> failed;
  caf::scoped_actor self{sys, true};
  self->request(out.node, left(), endpoint_atom::value)
    .receive(
      [&](balancer_actor& b, std::vector<device_allocator_actor>& a, pressure_monitor_actor& m,
          node_info& info) {
        out.endpoint.system = &sys;
        out.endpoint.balancer = std::move(b);
        out.endpoint.allocators = std::move(a);
        out.endpoint.monitor = std::move(m);
        out.endpoint.request_timeout = std::chrono::milliseconds{info.request_timeout_ms};
        out.endpoint.transition_timeout = std::chrono::milliseconds{info.transition_timeout_ms};
        out.endpoint.answers_by_deadline = false;
        out.info = std::move(info);
      },
      [&](caf::error& e) { failed = unreachable(what, "asked for its handles: " + why(sys, e)); });
  if (failed)
    return *failed;
  return out;
}

result<messages::cluster_actor> connect_cluster(caf::actor_system& sys, const std::string& host,
                                                std::uint16_t port,
                                                std::chrono::milliseconds deadline) {
  auto published =
    connect_published(sys, host, port, deadline, sys.message_types<cluster_actor>(),
                      "cluster " + host + ":" + std::to_string(port), "gpumem cluster");
  if (!published)
    return published.error();
  return caf::actor_cast<cluster_actor>(std::move(published).value());
}

} // namespace gpumem::client
