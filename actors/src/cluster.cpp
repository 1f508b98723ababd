// The cluster's membership: joining and leaving, the heartbeat that finds lost nodes
// and reconnects them, status, and the pressure events it forwards.

#include "gpumem/actors/cluster.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "cluster_internal.hpp"
#include "gpumem/actors/node.hpp"

namespace gpumem::actors {

using namespace messages;
using namespace clustering;

namespace clustering {

member* find_member(cluster_state& st, const std::string& address) {
  auto i = std::find_if(st.members.begin(), st.members.end(),
                        [&](const member& m) { return m.address == address; });
  return i == st.members.end() ? nullptr : &*i;
}

cluster_node describe(const member& m) {
  cluster_node out;
  out.address = m.address;
  out.health = m.health;
  out.info = m.info;
  out.cause = m.cause;
  if (m.seen)
    out.since_seen_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - *m.seen).count();
  return out;
}

caf::error unreachable(const member& m, const std::string& why) {
  return make_error(gpumem_errc::node_unreachable, "node " + m.address + ": " + why);
}

caf::error from_node(const member& m, const caf::error& e) {
  if (auto code = gpumem_code(e)) {
    if (*code == gpumem_errc::node_unreachable)
      return e;
    return make_error(*code, "node " + m.address + ": " + error_message(e));
  }
  if (e == caf::sec::request_timeout)
    return unreachable(m, "no answer before the deadline");
  return unreachable(m, caf::to_string(e));
}

namespace {

void answer_joiners(member& m) {
  auto joiners = std::move(m.joiners);
  m.joiners.clear();
  for (auto& rp : joiners) {
    if (m.health == node_health::up)
      rp.deliver(describe(m));
    else
      rp.deliver(unreachable(m, m.cause));
  }
}

} // namespace

void lose(cluster_pointer self, member& m, const std::string& cause) {
  const bool was_up = m.health == node_health::up;
  m.health = node_health::lost;
  m.cause = cause;
  ++m.generation;  // answers still on their way belong to the lost link
  m.connecting = m.probing = false;
  if (m.node)
    self->demonitor(m.node.address());
  if (m.forwarder)
    caf::anon_send(m.forwarder, leave_atom::value);
  m.node = nullptr;
  m.balancer = nullptr;
  m.allocators.clear();
  m.monitor = nullptr;
  m.forwarder = nullptr;
  if (was_up)
    spdlog::warn("cluster: node {} lost: {}", m.address, cause);
  fail_collectives_of(self, m.address, cause);
  answer_joiners(m);
}

} // namespace clustering

namespace {

std::chrono::milliseconds deadline_of(const cluster_state& st) { return st.options.deadline; }

/// Why a node could not be reached, as status shows it.
std::string why_not_reached(caf::actor_system& sys, const caf::error& e) {
  return e == caf::sec::request_timeout ? "no answer before the deadline" : sys.render(e);
}

/// A small actor per node that tags the node's pressure events with its name. Linked to
/// the cluster, it leaves (normally, which the link ignores) when told to.
caf::behavior forwarder(caf::event_based_actor* self, caf::actor cluster, std::string address) {
  return {
    [=](const pressure_event& e) { self->send(cluster, node_pressure_event{address, e}); },
    [self](leave_atom) { self->quit(); },
  };
}

void connected(cluster_pointer self, const std::string& address, std::uint64_t generation,
               node_actor node, balancer_actor balancer,
               std::vector<device_allocator_actor> allocators, pressure_monitor_actor monitor,
               node_info info) {
  auto* m = find_member(self->state, address);
  if (!m || m->generation != generation)
    return;
  m->connecting = false;
  m->node = std::move(node);
  m->balancer = std::move(balancer);
  m->allocators = std::move(allocators);
  m->monitor = std::move(monitor);
  m->info = std::move(info);
  m->seen = clock::now();
  m->health = node_health::up;
  m->cause.clear();
  self->monitor(m->node);
  m->forwarder = self->spawn<caf::linked>(forwarder, caf::actor_cast<caf::actor>(self), address);
  self->request(m->monitor, deadline_of(self->state), subscribe_atom::value,
                caf::actor_cast<pressure_subscriber_actor>(m->forwarder))
    .then([](ok_atom) {},
          [self, address, generation](caf::error& e) {
            if (auto* m = find_member(self->state, address); m && m->generation == generation)
              lose(self, *m, "its pressure monitor refused a subscription: "
                               + self->system().render(e));
          });
  spdlog::info("cluster: node {} up ({} on {}, {} device(s))", address, m->info.node_id,
               m->info.host, m->info.devices.size());
  answer_joiners(*m);
}

/// Asks a node reached for its handles; `failed` takes the reason it could not.
template <class Failed>
void ask_endpoint(cluster_pointer self, const std::string& address, std::uint64_t generation,
                  const node_actor& node, Failed failed) {
  self->request(node, deadline_of(self->state), endpoint_atom::value)
    .then(
      [self, address, generation, node](balancer_actor& b, std::vector<device_allocator_actor>& a,
                                        pressure_monitor_actor& p, node_info& info) {
        connected(self, address, generation, node, std::move(b), std::move(a), std::move(p),
                  std::move(info));
      },
      [self, failed](caf::error& e) { failed(why_not_reached(self->system(), e)); });
}

/// Connects to a member (through the network layer's manager, with the deadline; the
/// node of this process directly) and asks the node for its handles.
void connect(cluster_pointer self, member& m) {
  if (m.connecting)
    return;
  m.connecting = true;
  const auto generation = ++m.generation;
  const auto address = m.address;
  auto failed = [self, address, generation](std::string why) {
    auto* m = find_member(self->state, address);
    if (!m || m->generation != generation)
      return;
    m->connecting = false;  // joining or lost, it stays so until a heartbeat reaches it
    if (m->cause != why)
      spdlog::info("cluster: node {} not reached: {}", address, why);
    m->cause = std::move(why);
    answer_joiners(*m);
  };
  if (m.in_process) {
    ask_endpoint(self, address, generation, m.in_process, failed);
    return;
  }
  self
    ->request(network_manager(self->system()), deadline_of(self->state),
              caf::connect_atom::value, m.host, m.port)
    .then(
      [self, address, generation, failed](caf::node_id&, caf::strong_actor_ptr& ptr,
                                          std::set<std::string>& ifs) {
        if (!ptr) {
          failed("nothing is published there");
          return;
        }
        if (!self->system().assignable(ifs, self->system().message_types<node_actor>())) {
          failed("what is published there is not a gpumem node");
          return;
        }
        ask_endpoint(self, address, generation, caf::actor_cast<node_actor>(ptr), failed);
      },
      [self, failed](caf::error& e) { failed(why_not_reached(self->system(), e)); });
}

/// Asks an up member what it is; no answer by the deadline loses it.
void probe(cluster_pointer self, member& m) {
  if (m.probing)
    return;
  m.probing = true;
  const auto address = m.address;
  const auto generation = m.generation;
  self->request(m.node, deadline_of(self->state), info_atom::value)
    .then(
      [self, address, generation](node_info& info) {
        auto* m = find_member(self->state, address);
        if (!m || m->generation != generation)
          return;
        m->probing = false;
        m->info = std::move(info);
        m->seen = clock::now();
      },
      [self, address, generation](caf::error& e) {
        auto* m = find_member(self->state, address);
        if (!m || m->generation != generation)
          return;
        lose(self, *m,
             e == caf::sec::request_timeout
               ? "no heartbeat answer within " + std::to_string(deadline_of(self->state).count())
                   + " ms"
               : self->system().render(e));
      });
}

void heartbeat(cluster_pointer self) {
  for (auto& m : self->state.members) {
    if (m.health == node_health::up)
      probe(self, m);
    else
      connect(self, m);
  }
  self->delayed_send(self, self->state.options.heartbeat, heartbeat_atom::value);
}

/// Adds a member by address; an error where the address is not "host:port".
caf::expected<member*> add_member(cluster_pointer self, const std::string& address) {
  if (auto* m = find_member(self->state, address))
    return m;
  auto where = parse_listen_address(address);
  if (!where || where->port == 0)
    return make_error(gpumem_errc::invalid_config,
                      "node address: " + (where ? "port 0 names no node in \"" + address + "\""
                                                : where.error()));
  member m;
  m.address = address;
  m.host = where->host;
  m.port = where->port;
  m.cause = "not reached yet";
  self->state.members.push_back(std::move(m));
  return &self->state.members.back();
}

cluster_impl::behavior_type cluster_behavior(cluster_pointer self, cluster_options options,
                                             local_node local) {
  auto& st = self->state;
  st.options = std::move(options);
  // Transaction ids of a cluster must not meet those of the nodes' balancers (which
  // count from 1) on a device: start at a random point of the upper half.
  st.next_transaction = (std::uint64_t{1} << 63) | (std::random_device{}() * 4096ULL);
  for (const auto& address : st.options.nodes)
    if (auto added = add_member(self, address); !added)
      spdlog::error("cluster: {}", self->system().render(added.error()));
  if (local.node) {
    if (auto added = add_member(self, local.address); !added)
      spdlog::error("cluster: this process's node: {}", self->system().render(added.error()));
    else
      (*added)->in_process = std::move(local.node);
  }
  self->set_down_handler([self](caf::down_msg& down) {
    for (auto& m : self->state.members)
      if (m.node && m.node.address() == down.source)
        lose(self, m, "its link went down (" + self->system().render(down.reason) + ")");
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const cluster_subscriber_actor& s) {
                                return s.address() == down.source;
                              }),
               subs.end());
  });
  self->send(self, heartbeat_atom::value);
  return {
    [self](heartbeat_atom) { heartbeat(self); },
    [self](const node_pressure_event& e) {
      for (auto& s : self->state.subscribers)
        self->send(s, e);
    },
    [self](join_atom, const std::string& address) -> caf::result<cluster_node> {
      auto added = add_member(self, address);
      if (!added)
        return std::move(added.error());
      auto* m = *added;
      if (m->health == node_health::up)
        return describe(*m);
      auto rp = self->make_response_promise<cluster_node>();
      m->joiners.push_back(rp);
      connect(self, *m);
      return rp;
    },
    [self](leave_atom, const std::string& address) -> caf::result<ok_atom> {
      auto& members = self->state.members;
      auto i = std::find_if(members.begin(), members.end(),
                            [&](const member& m) { return m.address == address; });
      if (i == members.end())
        return make_error(gpumem_errc::invalid_config,
                          "node " + address + " is not in the cluster");
      lose(self, *i, "it left the cluster");
      members.erase(i);
      return ok_atom::value;
    },
    [self](status_atom) -> cluster_status {
      cluster_status out;
      for (const auto& m : self->state.members)
        out.nodes.push_back(describe(m));
      out.heartbeat_ms = self->state.options.heartbeat.count();
      out.deadline_ms = self->state.options.deadline.count();
      return out;
    },
    [self](stats_atom) { return on_stats(self); },
    [self](allocate_atom, placement_request& r) { return on_allocate(self, std::move(r)); },
    [self](deallocate_atom, placed_region& p) { return on_deallocate(self, std::move(p)); },
    [self](collective_atom, collective_request& r) { return on_collective(self, std::move(r)); },
    [self](subscribe_atom, const cluster_subscriber_actor& s) -> ok_atom {
      auto& subs = self->state.subscribers;
      if (s && std::find(subs.begin(), subs.end(), s) == subs.end()) {
        subs.push_back(s);
        self->monitor(s);
      }
      return ok_atom::value;
    },
    [self](unsubscribe_atom, const cluster_subscriber_actor& s) -> ok_atom {
      auto& subs = self->state.subscribers;
      subs.erase(std::remove(subs.begin(), subs.end(), s), subs.end());
      return ok_atom::value;
    },
  };
}

} // namespace

cluster_actor spawn_cluster(caf::actor_system& sys, const cluster_options& options,
                            local_node local) {
  return caf::actor_cast<cluster_actor>(sys.spawn(cluster_behavior, options, std::move(local)));
}

basic_result<std::uint16_t, std::string> publish_cluster(caf::actor_system& sys,
                                                         const cluster_actor& cluster,
                                                         const cluster_options& options,
                                                         bool insecure) {
  return publish_on(sys, caf::actor_cast<caf::strong_actor_ptr>(cluster),
                    sys.message_types(cluster), "gpumem.cluster.listen", options.listen,
                    insecure);
}

} // namespace gpumem::actors
