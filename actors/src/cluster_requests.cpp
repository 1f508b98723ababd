// The cluster's requests that ask the nodes' balancers: statistics, placement, free.

#include <algorithm>
#include <memory>
#include <utility>

#include "cluster_internal.hpp"
#include "statistics_sum.hpp"

namespace gpumem::actors::clustering {

using namespace messages;

namespace {

/// The most free bytes on one device of a node, as its last heartbeat answered.
std::uint64_t most_free(const member& m) {
  std::uint64_t best = 0;
  for (const auto& d : m.info.devices)
    if (d.state == device_state::awake)
      best = std::max(best, d.free_bytes);
  return best;
}

caf::error not_a_member(const std::string& address) {
  return make_error(gpumem_errc::invalid_config, "node " + address + " is not in the cluster");
}

/// Allocates on the first of `order` that takes the request, trying the next where a
/// node has no room (its answers say so: out_of_memory, no_device_available).
void place(cluster_pointer self, std::shared_ptr<std::vector<std::string>> order,
           std::size_t next, allocation_request request,
           caf::typed_response_promise<placed_region> rp, caf::error last) {
  if (next == order->size()) {
    rp.deliver(last ? std::move(last)
                    : make_error(gpumem_errc::no_device_available, "no node is up"));
    return;
  }
  auto address = (*order)[next];
  auto* m = find_member(self->state, address);
  if (!m || m->health != node_health::up) {
    place(self, order, next + 1, std::move(request), std::move(rp), std::move(last));
    return;
  }
  self->request(m->balancer, self->state.options.deadline, allocate_atom::value, request)
    .then(
      [rp, address](region_handle& region) mutable {
        rp.deliver(placed_region{address, std::move(region)});
      },
      [self, order, next, request, rp, address](caf::error& e) mutable {
        auto* m = find_member(self->state, address);
        auto why = m ? from_node(*m, e) : e;
        auto code = gpumem_code(e);
        const bool no_room = code == gpumem_errc::out_of_memory
                             || code == gpumem_errc::no_device_available;
        if (no_room && next + 1 < order->size())
          place(self, order, next + 1, std::move(request), std::move(rp), std::move(why));
        else
          rp.deliver(std::move(why));
      });
}

} // namespace

caf::result<nodes_statistics> on_stats(cluster_pointer self) {
  std::vector<member*> up;
  for (auto& m : self->state.members)
    if (m.health == node_health::up)
      up.push_back(&m);
  if (up.empty())
    return nodes_statistics{};
  auto rp = self->make_response_promise<nodes_statistics>();
  struct gathering {
    std::vector<std::optional<node_statistics>> values;
    std::size_t pending = 0;
    caf::error failed;
  };
  auto g = std::make_shared<gathering>();
  g->values.resize(up.size());
  g->pending = up.size();
  auto finish = [rp, g]() mutable {
    if (--g->pending != 0)
      return;
    if (g->failed) {
      rp.deliver(g->failed);
      return;
    }
    nodes_statistics out;
    out.total.device = -1;
    for (auto& v : g->values) {
      add_statistics(out.total, v->devices.total);
      out.nodes.push_back(std::move(*v));
    }
    rp.deliver(std::move(out));
  };
  for (std::size_t i = 0; i < up.size(); ++i) {
    auto address = up[i]->address;
    self->request(up[i]->balancer, self->state.options.deadline, stats_atom::value)
      .then(
        [g, i, address, finish](cluster_statistics& s) mutable {
          g->values[i] = node_statistics{address, std::move(s)};
          finish();
        },
        [self, g, address, finish](caf::error& e) mutable {
          if (!g->failed) {
            auto* m = find_member(self->state, address);
            g->failed = m ? from_node(*m, e) : e;
          }
          finish();
        });
  }
  return rp;
}

caf::result<placed_region> on_allocate(cluster_pointer self, placement_request request) {
  auto order = std::make_shared<std::vector<std::string>>();
  if (!request.node.empty()) {
    auto* m = find_member(self->state, request.node);
    if (!m)
      return not_a_member(request.node);
    if (m->health != node_health::up)
      return unreachable(*m, m->cause);
    order->push_back(m->address);
  } else {
    std::vector<const member*> up;
    for (const auto& m : self->state.members)
      if (m.health == node_health::up)
        up.push_back(&m);
    std::stable_sort(up.begin(), up.end(), [](const member* a, const member* b) {
      return most_free(*a) > most_free(*b);
    });
    for (auto* m : up)
      order->push_back(m->address);
  }
  auto rp = self->make_response_promise<placed_region>();
  place(self, order, 0, std::move(request.request), rp, caf::error{});
  return rp;
}

caf::result<caf::ok_atom> on_deallocate(cluster_pointer self, placed_region placed) {
  auto* m = find_member(self->state, placed.node);
  if (!m)
    return not_a_member(placed.node);
  if (m->health != node_health::up)
    return unreachable(*m, m->cause);
  auto rp = self->make_response_promise<caf::ok_atom>();
  auto address = m->address;
  self->request(m->balancer, self->state.options.deadline, deallocate_atom::value,
                std::move(placed.region))
    .then([rp](ok_atom) mutable { rp.deliver(ok_atom::value); },
          [self, rp, address](caf::error& e) mutable {
            auto* m = find_member(self->state, address);
            rp.deliver(m ? from_node(*m, e) : e);
          });
  return rp;
}

} // namespace gpumem::actors::clustering
