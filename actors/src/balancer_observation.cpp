// What the balancer tells of the devices: their statistics summed, their info and
// their status, each asked afresh.

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

/// Observations that come too late are simply dropped.
struct ignore_late_of_device {
  template <class T>
  void operator()(std::int32_t, T&) const noexcept {}
};

// -- statistics ----------------------------------------------------------------------

void add(stat& sum, const stat& x) {
  sum.current += x.current;
  sum.peak += x.peak;
  sum.allocated += x.allocated;
  sum.freed += x.freed;
}

void add(stat_grid& sum, const stat_grid& x) {
  add(sum.allocated, x.allocated);
  add(sum.requested, x.requested);
  add(sum.active, x.active);
  add(sum.reserved, x.reserved);
  add(sum.cached, x.cached);
  sum.allocations += x.allocations;
  sum.frees += x.frees;
}

void add(statistics& sum, const statistics& x) {
  add(sum.total, x.total);
  for (auto& t : x.tags) {
    auto i = std::lower_bound(sum.tags.begin(), sum.tags.end(), t.tag,
                              [](const tag_stat_grid& a, const std::string& b) {
                                return a.tag < b;
                              });
    if (i == sum.tags.end() || i->tag != t.tag)
      i = sum.tags.insert(i, tag_stat_grid{t.tag, {}});
    add(i->grid, t.grid);
  }
  sum.ooms += x.ooms;
  sum.oom_retries += x.oom_retries;
  sum.segments_created += x.segments_created;
  sum.segments_released += x.segments_released;
  sum.chunks_created += x.chunks_created;
  sum.chunks_reused += x.chunks_reused;
  sum.chunks_released += x.chunks_released;
  sum.sleeps += x.sleeps;
  sum.wakes += x.wakes;
  sum.failed_transitions += x.failed_transitions;
  sum.bytes_backed_up += x.bytes_backed_up;
  sum.bytes_restored += x.bytes_restored;
  sum.bytes_discarded += x.bytes_discarded;
  sum.sleep_seconds += x.sleep_seconds;
  sum.wake_seconds += x.wake_seconds;
  sum.trims += x.trims;
  sum.defragmentations += x.defragmentations;
  sum.bytes_trimmed += x.bytes_trimmed;
  // Every engine counts with the same bounds (core::duration_buckets), so this adds.
  (void) sum.sleep_durations.add(x.sleep_durations);
  (void) sum.wake_durations.add(x.wake_durations);
}

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
        add(result.total, *s);
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
