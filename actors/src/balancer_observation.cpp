// What the balancer tells of the devices: their statistics summed, their info and
// their status, each asked afresh.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"
#include "statistics_sum.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

/// Observations that come too late are simply dropped.
struct ignore_late_of_device {
  template <class T>
  void operator()(std::int32_t, T&) const noexcept {}
};

} // namespace

caf::result<cluster_statistics> on_stats(balancer_pointer self) {
  auto rp = self->make_response_promise<cluster_statistics>();
  gather<statistics>(
    self, all_devices(self->state), "stats", deadline_kind::request,
    [rp](gathering<statistics>& g) mutable {
      if (auto* e = first_error(g)) {
        rp.deliver(*e);
        return;
      }
      cluster_statistics result;
      result.total.device = -1;
      for (auto& s : g.values) {
        add_statistics(result.total, *s);
        result.devices.push_back(std::move(*s));
      }
      rp.deliver(std::move(result));
    },
    ignore_late_of_device{}, stats_atom::value);
  return rp;
}

caf::result<std::vector<device_info>> on_info(balancer_pointer self) {
  auto rp = self->make_response_promise<std::vector<device_info>>();
  gather<device_info>(
    self, all_devices(self->state), "info", deadline_kind::request,
    [self, rp](gathering<device_info>& g) mutable {
      std::vector<device_info> result;
      for (std::size_t i = 0; i < g.values.size(); ++i) {
        if (g.values[i]) {
          if (auto* d = find_device(self->state, g.devices[i]))
            d->info = *g.values[i];
          result.push_back(std::move(*g.values[i]));
        } else if (auto* d = find_device(self->state, g.devices[i])) {
          spdlog::warn("balancer: info of device {} failed ({}); answering the last known",
                       g.devices[i], describe(g.errors[i]));
          result.push_back(d->info);
        }
      }
      rp.deliver(std::move(result));
    },
    ignore_late_of_device{}, info_atom::value);
  return rp;
}

caf::result<balancer_status> on_status(balancer_pointer self) {
  auto rp = self->make_response_promise<balancer_status>();
  gather<device_status>(
    self, all_devices(self->state), "status", deadline_kind::request,
    [self, rp](gathering<device_status>& g) mutable {
      auto& st = self->state;
      if (auto* e = first_error(g)) {
        rp.deliver(*e);
        return;
      }
      balancer_status result;
      result.routing = to_string(st.options.routing);
      result.allocations_routed = st.allocations_routed;
      result.allocations_rejected = st.allocations_rejected;
      for (auto& s : g.values) {
        st.pressure[s->device] = s->pressure;
        result.devices.push_back(std::move(*s));
      }
      rp.deliver(std::move(result));
    },
    ignore_late_of_device{}, status_atom::value);
  return rp;
}

} // namespace gpumem::actors::balancing
