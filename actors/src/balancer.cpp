#include "gpumem/actors/balancer.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/system_messages.hpp>
#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/type_erased_tuple.hpp>
#include <caf/typed_response_promise.hpp>
#include <spdlog/spdlog.h>

namespace gpumem::actors {

using namespace messages;

namespace {

/// Private: the periodic refresh tick (default handler, like the allocator's poll).
using refresh_atom = caf::atom_constant<caf::atom("gpm_refrsh")>;

using behavior_type = balancer_actor::behavior_type;
using device_entry = balancer_state::device_entry;

std::string device_name(std::int32_t device) {
  return "device " + std::to_string(device);
}

/// A downstream failure as the balancer answers it: timeouts become
/// gpumem_errc::timeout, other CAF errors device_failure; gpumem errors stay.
caf::error downstream_error(const balancer_state& st, std::int32_t device, const char* what,
                            caf::error e) {
  if (e == caf::sec::request_timeout)
    return make_error(gpumem_errc::timeout,
                      device_name(device) + " did not answer " + what + " within " +
                        std::to_string(st.options.request_timeout.count()) + " ms");
  if (gpumem_code(e))
    return e;
  return make_error(gpumem_errc::device_failure,
                    device_name(device) + ": " + what + " failed: " + caf::to_string(e));
}

std::string describe(const caf::error& e) {
  auto code = gpumem_code(e);
  if (!code)
    return caf::to_string(e);
  auto message = error_message(e);
  return message.empty() ? std::string{to_string(*code)}
                         : std::string{to_string(*code)} + ": " + message;
}

std::uint64_t estimated_free(const device_entry& d) {
  return d.info.free_bytes > d.pending_bytes ? d.info.free_bytes - d.pending_bytes : 0;
}

bool is_critical(const balancer_state& st, std::int32_t device) {
  auto i = st.pressure.find(device);
  return i != st.pressure.end() && i->second == pressure_level::critical;
}

/// The devices a request may go to: the non-critical ones with room when there are
/// any, else every device.
std::vector<std::int32_t> candidates(const balancer_state& st, std::uint64_t size) {
  std::vector<std::int32_t> result;
  for (auto& [id, d] : st.devices)
    if (!is_critical(st, id) && estimated_free(d) >= size)
      result.push_back(id);
  if (result.empty())  // no healthy device has room: every device is a candidate
    for (auto& [id, d] : st.devices)
      result.push_back(id);
  return result;
}

std::int32_t least_loaded(const balancer_state& st, const std::vector<std::int32_t>& ids) {
  auto best = ids.front();
  for (auto id : ids)
    if (estimated_free(st.devices.at(id)) > estimated_free(st.devices.at(best)))
      best = id;
  return best;
}

/// Picks the device for `request`; an error when none can be chosen.
caf::expected<std::int32_t> route(balancer_state& st, const allocation_request& request) {
  if (request.device_hint >= 0) {
    if (st.devices.count(request.device_hint) == 0)
      return make_error(gpumem_errc::unknown_device,
                        "device_hint " + std::to_string(request.device_hint) +
                          ": no such device behind this balancer");
    return request.device_hint;
  }
  if (st.devices.empty())
    return make_error(gpumem_errc::no_device_available, "the balancer has no devices");
  auto ids = candidates(st, request.size);
  switch (st.options.routing) {
    case routing_policy::least_loaded:
      return least_loaded(st, ids);
    case routing_policy::round_robin: {
      std::vector<std::int32_t> order;
      for (auto& [id, d] : st.devices)
        order.push_back(id);
      for (std::size_t k = 0; k < order.size(); ++k) {
        auto pos = (st.next_round_robin + k) % order.size();
        if (std::find(ids.begin(), ids.end(), order[pos]) != ids.end()) {
          st.next_round_robin = pos + 1;
          return order[pos];
        }
      }
      return ids.front();  // unreachable: ids is a non-empty subset of order
    }
    case routing_policy::tag_affinity: {
      auto i = st.affinity.find(request.tag);
      if (i != st.affinity.end() && st.devices.count(i->second) != 0 &&
          (!is_critical(st, i->second) ||
           std::find(ids.begin(), ids.end(), i->second) != ids.end()))
        return i->second;
      if (i != st.affinity.end() && st.devices.count(i->second) != 0)
        return least_loaded(st, ids);  // its device is critical: elsewhere this time
      auto chosen = least_loaded(st, ids);
      st.affinity[request.tag] = chosen;
      return chosen;
    }
  }
  return make_error(gpumem_errc::invalid_config, "unknown routing policy");
}

device_entry* find_device(balancer_state& st, std::int32_t device) {
  auto i = st.devices.find(device);
  return i == st.devices.end() ? nullptr : &i->second;
}

caf::error unknown_device(std::int32_t device) {
  return make_error(gpumem_errc::unknown_device,
                    device_name(device) + ": no such device behind this balancer");
}

// -- keeping the devices' figures fresh ----------------------------------------------

void apply_info(balancer_state& st, const device_info& info) {
  if (auto* d = find_device(st, info.device))
    d->info = info;
}

/// Asks one device for its info (free bytes) and status (pressure level).
void refresh(balancer_pointer self, std::int32_t device) {
  auto* d = find_device(self->state, device);
  if (!d)
    return;
  auto handle = d->handle;
  auto timeout = self->state.options.request_timeout;
  self->request(handle, timeout, info_atom::value)
    .then([self](device_info& info) { apply_info(self->state, info); },
          [device](caf::error& e) {
            spdlog::warn("balancer: refreshing device {} failed: {}", device, describe(e));
          });
  self->request(handle, timeout, status_atom::value)
    .then([self](device_status& s) { self->state.pressure[s.device] = s.pressure; },
          [](caf::error&) {});
}

void schedule_refresh(balancer_pointer self) {
  auto interval = self->state.options.refresh_interval;
  if (interval.count() > 0)
    caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), interval, refresh_atom::value);
}

void on_pressure(balancer_pointer self, const pressure_event& event) {
  auto& st = self->state;
  auto& level = st.pressure[event.device];
  if (level != event.level)
    spdlog::info("balancer: device {} pressure {} -> {}", event.device, to_string(level),
                 to_string(event.level));
  level = event.level;
  if (auto* d = find_device(st, event.device))
    d->info.free_bytes = event.available_bytes;
}

// -- gathering answers of several devices --------------------------------------------

/// One answer per target, in target order; `done` runs once every one is in.
template <class T>
struct gathering {
  std::vector<std::int32_t> devices;
  std::vector<std::optional<T>> values;
  std::vector<caf::error> errors;
  std::size_t pending = 0;
};

using targets = std::vector<std::pair<std::int32_t, device_allocator_actor>>;

targets all_devices(const balancer_state& st) {
  targets result;
  for (auto& [id, d] : st.devices)
    result.emplace_back(id, d.handle);
  return result;
}

template <class T, class Done, class... Ts>
void gather(balancer_pointer self, const targets& to, const char* what, Done done,
            Ts... xs) {
  auto g = std::make_shared<gathering<T>>();
  g->pending = to.size();
  g->values.resize(to.size());
  g->errors.resize(to.size());
  for (auto& [id, handle] : to)
    g->devices.push_back(id);
  if (to.empty()) {
    done(*g);
    return;
  }
  for (std::size_t i = 0; i < to.size(); ++i) {
    auto device = to[i].first;
    self->request(to[i].second, self->state.options.request_timeout, xs...)
      .then(
        [=](T& x) mutable {
          g->values[i] = std::move(x);
          if (--g->pending == 0)
            done(*g);
        },
        [=](caf::error& e) mutable {
          g->errors[i] = downstream_error(self->state, device, what, std::move(e));
          if (--g->pending == 0)
            done(*g);
        });
  }
}

// -- allocation ----------------------------------------------------------------------

/// Routes and sends one allocation; `done` gets the handle or the error.
template <class Done>
void route_allocation(balancer_pointer self, const allocation_request& request, Done done) {
  auto& st = self->state;
  auto chosen = route(st, request);
  if (!chosen) {
    ++st.allocations_rejected;
    done(caf::expected<region_handle>{std::move(chosen.error())});
    return;
  }
  auto device = *chosen;
  auto& d = st.devices.at(device);
  d.pending_bytes += request.size;
  ++st.allocations_routed;
  auto size = request.size;
  auto settle = [self, device, size] {
    if (auto* e = find_device(self->state, device))
      e->pending_bytes -= std::min(e->pending_bytes, size);
  };
  self->request(d.handle, st.options.request_timeout, allocate_atom::value, request)
    .then(
      [=](region_handle& h) mutable {
        settle();
        if (auto* e = find_device(self->state, device))
          e->info.free_bytes -= std::min(e->info.free_bytes, h.size);  // until refreshed
        refresh(self, device);
        done(caf::expected<region_handle>{std::move(h)});
      },
      [=](caf::error& err) mutable {
        settle();
        ++self->state.allocations_rejected;
        done(caf::expected<region_handle>{
          downstream_error(self->state, device, "allocate", std::move(err))});
      });
}

caf::result<region_handle> on_allocate(balancer_pointer self, allocation_request request) {
  auto rp = self->make_response_promise<region_handle>();
  route_allocation(self, request, [rp](caf::expected<region_handle> r) mutable {
    if (r)
      rp.deliver(std::move(*r));
    else
      rp.deliver(std::move(r.error()));
  });
  return rp;
}

/// Sends a request about one region to handle.device.
template <class Atom>
caf::result<ok_atom> on_region(balancer_pointer self, Atom atom, const region_handle& h,
                               const char* what) {
  auto* d = find_device(self->state, h.device);
  if (!d)
    return unknown_device(h.device);
  auto rp = self->make_response_promise<ok_atom>();
  auto device = h.device;
  self->request(d->handle, self->state.options.request_timeout, atom, h.region)
    .then(
      [=](ok_atom) mutable {
        if (std::is_same_v<Atom, deallocate_atom>)
          refresh(self, device);
        rp.deliver(ok_atom::value);
      },
      [=](caf::error& e) mutable {
        rp.deliver(downstream_error(self->state, device, what, std::move(e)));
      });
  return rp;
}

struct batch_progress {
  caf::typed_response_promise<batch_allocation_response> rp;
  std::vector<std::optional<region_handle>> regions;
  std::vector<caf::error> errors;
  std::size_t pending = 0;
};

/// Every request of the batch answered: deliver, or free what succeeded and answer
/// the first failure once the frees are done.
void finish_batch(balancer_pointer self, std::shared_ptr<batch_progress> b) {
  std::size_t failed = b->errors.size();
  for (std::size_t i = 0; i < b->errors.size(); ++i)
    if (b->errors[i]) {
      failed = i;
      break;
    }
  if (failed == b->errors.size()) {
    batch_allocation_response response;
    for (auto& r : b->regions)
      response.regions.push_back(std::move(*r));
    b->rp.deliver(std::move(response));
    return;
  }
  auto cause = b->errors[failed];
  auto code = gpumem_code(cause).value_or(gpumem_errc::device_failure);
  std::vector<region_handle> undo;
  for (auto& r : b->regions)
    if (r)
      undo.push_back(*r);
  auto message = "batch request " + std::to_string(failed) + " of " +
                 std::to_string(b->errors.size()) + " failed (" + std::to_string(undo.size()) +
                 " allocation(s) undone): " + describe(cause);
  auto answer = std::make_shared<caf::error>(make_error(code, message));
  if (undo.empty()) {
    b->rp.deliver(*answer);
    return;
  }
  auto left = std::make_shared<std::size_t>(undo.size());
  for (auto& h : undo) {
    auto* d = find_device(self->state, h.device);
    auto one_done = [=] {
      if (--*left == 0)
        b->rp.deliver(*answer);
    };
    if (!d) {
      spdlog::error("balancer: batch roll-back: device {} left; region {} stays", h.device,
                    h.region);
      one_done();
      continue;
    }
    auto device = h.device;
    auto region = h.region;
    self->request(d->handle, self->state.options.request_timeout, deallocate_atom::value,
                  region)
      .then(
        [=](ok_atom) {
          refresh(self, device);
          one_done();
        },
        [=](caf::error& e) {
          spdlog::error("balancer: batch roll-back could not free region {} on device {}: {}",
                        region, device, describe(e));
          one_done();
        });
  }
}

caf::result<batch_allocation_response> on_batch(balancer_pointer self,
                                                batch_allocation_request batch) {
  if (batch.requests.empty())
    return batch_allocation_response{};
  auto b = std::make_shared<batch_progress>();
  b->rp = self->make_response_promise<batch_allocation_response>();
  b->regions.resize(batch.requests.size());
  b->errors.resize(batch.requests.size());
  b->pending = batch.requests.size();
  for (std::size_t i = 0; i < batch.requests.size(); ++i)
    route_allocation(self, batch.requests[i], [self, b, i](caf::expected<region_handle> r) {
      if (r)
        b->regions[i] = std::move(*r);
      else
        b->errors[i] = std::move(r.error());
      if (--b->pending == 0)
        finish_batch(self, b);
    });
  return b->rp;
}

// -- sleep and wake on every device --------------------------------------------------

/// After a sleep_all or wake_all failed: undo it on the devices that succeeded, then
/// answer the first failure's code with a message naming the device and the cause.
void roll_back_transition(balancer_pointer self, transition_kind kind,
                          const gathering<transition_report>& g,
                          caf::typed_response_promise<std::vector<transition_report>> rp) {
  std::size_t failed = 0;
  while (!g.errors[failed])
    ++failed;
  const auto& cause = g.errors[failed];
  auto code = gpumem_code(cause).value_or(gpumem_errc::device_failure);
  const char* what = kind == transition_kind::sleep ? "sleep_all" : "wake_all";
  auto message = std::make_shared<std::string>(
    std::string{what} + ": " + device_name(g.devices[failed]) + " failed (" + describe(cause) +
    ")");
  targets undo_sleep;  // devices that slept: wake them
  targets undo_wake;   // devices that woke: sleep them again
  std::vector<std::vector<std::string>> tags;
  for (std::size_t i = 0; i < g.values.size(); ++i) {
    if (!g.values[i])
      continue;
    auto* d = find_device(self->state, g.devices[i]);
    if (!d)
      continue;
    (kind == transition_kind::sleep ? undo_sleep : undo_wake).emplace_back(g.devices[i],
                                                                           d->handle);
    tags.push_back(g.values[i]->tags);
  }
  if (undo_sleep.empty() && undo_wake.empty()) {
    rp.deliver(make_error(code, *message + "; nothing to roll back"));
    return;
  }
  auto left = std::make_shared<std::size_t>(tags.size());
  auto rolled = std::make_shared<std::string>();
  auto one_done = [=](std::int32_t device, const caf::error& e) mutable {
    if (e) {
      spdlog::error("balancer: {} roll-back failed on device {}: {}", what, device,
                    describe(e));
      *rolled += (rolled->empty() ? "" : ", ") + device_name(device) +
                 " NOT rolled back (" + describe(e) + ")";
    } else {
      *rolled += (rolled->empty() ? "" : ", ") + device_name(device) + " rolled back";
    }
    if (--*left == 0)
      rp.deliver(make_error(code, *message + "; " + *rolled));
  };
  auto timeout = self->state.options.request_timeout;
  auto& st = self->state;
  auto send_undo = [&](const targets& to, auto make_request) {
    for (std::size_t i = 0; i < to.size(); ++i) {
      auto device = to[i].first;
      make_request(to[i].second, tags[i])
        .then([=](transition_report&) mutable { one_done(device, caf::error{}); },
              [=](caf::error& e) mutable {
                one_done(device, downstream_error(self->state, device, "roll-back",
                                                  std::move(e)));
              });
    }
  };
  send_undo(undo_sleep, [&](const device_allocator_actor& h, std::vector<std::string> t) {
    return self->request(h, timeout, wake_atom::value, std::move(t));
  });
  std::size_t index = 0;
  send_undo(undo_wake, [&](const device_allocator_actor& h, std::vector<std::string> t) {
    auto device = undo_wake[index++].first;
    sleep_policy policy;
    if (auto i = st.last_sleep.find(device); i != st.last_sleep.end())
      policy = i->second;
    else
      policy = sleep_policy::backing_up(t);  // nothing known: keep every woken byte
    policy.tags = std::move(t);
    return self->request(h, timeout, sleep_atom::value, std::move(policy));
  });
}

template <class Arg>
caf::result<std::vector<transition_report>> on_transition_all(balancer_pointer self,
                                                              transition_kind kind, Arg arg) {
  auto& st = self->state;
  if (st.devices.empty())
    return make_error(gpumem_errc::no_device_available, "the balancer has no devices");
  auto rp = self->make_response_promise<std::vector<transition_report>>();
  auto done = [self, kind, rp, arg](gathering<transition_report>& g) mutable {
    for (auto id : g.devices)
      refresh(self, id);
    bool ok = std::all_of(g.errors.begin(), g.errors.end(),
                          [](const caf::error& e) { return !e; });
    if (!ok) {
      roll_back_transition(self, kind, g, rp);
      return;
    }
    std::vector<transition_report> reports;
    for (std::size_t i = 0; i < g.values.size(); ++i) {
      if constexpr (std::is_same_v<Arg, sleep_policy>)
        self->state.last_sleep[g.devices[i]] = arg;
      reports.push_back(std::move(*g.values[i]));
    }
    rp.deliver(std::move(reports));
  };
  if constexpr (std::is_same_v<Arg, sleep_policy>)
    gather<transition_report>(self, all_devices(st), "sleep", done, sleep_atom::value, arg);
  else
    gather<transition_report>(self, all_devices(st), "wake", done, wake_atom::value, arg);
  return rp;
}

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
}

/// The first error of a gathering, or none.
template <class T>
const caf::error* first_error(const gathering<T>& g) {
  for (auto& e : g.errors)
    if (e)
      return &e;
  return nullptr;
}

caf::result<cluster_statistics> on_stats(balancer_pointer self) {
  auto rp = self->make_response_promise<cluster_statistics>();
  gather<statistics>(
    self, all_devices(self->state), "stats",
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
    stats_atom::value);
  return rp;
}

caf::result<std::vector<device_info>> on_info(balancer_pointer self) {
  auto rp = self->make_response_promise<std::vector<device_info>>();
  gather<device_info>(
    self, all_devices(self->state), "info",
    [self, rp](gathering<device_info>& g) mutable {
      std::vector<device_info> result;
      for (std::size_t i = 0; i < g.values.size(); ++i) {
        if (g.values[i]) {
          apply_info(self->state, *g.values[i]);
          result.push_back(std::move(*g.values[i]));
        } else if (auto* d = find_device(self->state, g.devices[i])) {
          spdlog::warn("balancer: info of device {} failed ({}); answering the last known",
                       g.devices[i], describe(g.errors[i]));
          result.push_back(d->info);
        }
      }
      rp.deliver(std::move(result));
    },
    info_atom::value);
  return rp;
}

caf::result<balancer_status> on_status(balancer_pointer self) {
  auto rp = self->make_response_promise<balancer_status>();
  gather<device_status>(
    self, all_devices(self->state), "status",
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
    status_atom::value);
  return rp;
}

// -- devices -------------------------------------------------------------------------

caf::result<device_info> on_add_device(balancer_pointer self, device_allocator_actor handle) {
  if (!handle)
    return make_error(gpumem_errc::invalid_config, "add_device: an invalid allocator handle");
  auto rp = self->make_response_promise<device_info>();
  auto timeout = self->state.options.request_timeout;
  self->request(handle, timeout, info_atom::value)
    .then(
      [=](device_info& info) mutable {
        auto& st = self->state;
        auto i = st.devices.find(info.device);
        if (i != st.devices.end() && i->second.handle != handle) {
          rp.deliver(make_error(gpumem_errc::invalid_config,
                                device_name(info.device) +
                                  " is already routed to another allocator"));
          return;
        }
        if (i == st.devices.end()) {
          self->monitor(handle);
          spdlog::info("balancer: device {} added ({}, {} B free of {} B)", info.device,
                       info.name, info.free_bytes, info.total_bytes);
        }
        auto& d = st.devices[info.device];
        d.handle = handle;
        d.info = info;
        refresh(self, info.device);  // its status: the pressure level
        rp.deliver(std::move(info));
      },
      [=](caf::error& e) mutable {
        auto err = e == caf::sec::request_timeout
                     ? make_error(gpumem_errc::timeout, "add_device: the allocator did not "
                                                        "answer info in time")
                     : gpumem_code(e) ? e
                                      : make_error(gpumem_errc::device_failure,
                                                   "add_device: " + caf::to_string(e));
        rp.deliver(std::move(err));
      });
  return rp;
}

caf::result<ok_atom> on_remove_device(balancer_pointer self, std::int32_t device) {
  auto& st = self->state;
  auto i = st.devices.find(device);
  if (i == st.devices.end())
    return unknown_device(device);
  self->demonitor(i->second.handle.address());
  st.devices.erase(i);
  st.last_sleep.erase(device);
  for (auto j = st.affinity.begin(); j != st.affinity.end();)
    j = j->second == device ? st.affinity.erase(j) : std::next(j);
  spdlog::info("balancer: device {} removed", device);
  return ok_atom::value;
}

void on_down(balancer_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  for (auto i = st.devices.begin(); i != st.devices.end(); ++i)
    if (i->second.handle.address() == msg.source) {
      auto device = i->first;
      spdlog::warn("balancer: device {} went down ({}); no longer routed to", device,
                   caf::to_string(msg.reason));
      st.devices.erase(i);
      st.last_sleep.erase(device);
      for (auto j = st.affinity.begin(); j != st.affinity.end();)
        j = j->second == device ? st.affinity.erase(j) : std::next(j);
      return;
    }
}

} // namespace

balancer_actor::behavior_type balancer(balancer_pointer self, balancer_options options) {
  auto& st = self->state;
  st.options = options;
  if (st.options.request_timeout.count() <= 0)
    st.options.request_timeout = std::chrono::milliseconds{10000};
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->set_default_handler(
    [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
      auto self = static_cast<balancer_pointer>(ptr);
      auto& content = x.content();
      if (content.match_elements<pressure_event>()) {
        on_pressure(self, content.get_as<pressure_event>(0));
        return caf::message{};
      }
      if (content.match_elements<refresh_atom>()) {
        for (auto& [id, d] : self->state.devices)
          refresh(self, id);
        schedule_refresh(self);
        return caf::message{};
      }
      return caf::sec::unexpected_message;
    });
  schedule_refresh(self);
  spdlog::info("balancer: starts, routing {}", to_string(st.options.routing));
  return {
    [=](allocate_atom, allocation_request request) -> caf::result<region_handle> {
      return on_allocate(self, std::move(request));
    },
    [=](deallocate_atom, region_handle h) -> caf::result<ok_atom> {
      return on_region(self, deallocate_atom::value, h, "deallocate");
    },
    [=](touch_atom, region_handle h) -> caf::result<ok_atom> {
      return on_region(self, touch_atom::value, h, "touch");
    },
    [=](batch_allocate_atom,
        batch_allocation_request batch) -> caf::result<batch_allocation_response> {
      return on_batch(self, std::move(batch));
    },
    [=](sleep_all_atom, sleep_policy policy) -> caf::result<std::vector<transition_report>> {
      return on_transition_all(self, transition_kind::sleep, std::move(policy));
    },
    [=](wake_all_atom,
        std::vector<std::string> tags) -> caf::result<std::vector<transition_report>> {
      return on_transition_all(self, transition_kind::wake, std::move(tags));
    },
    [=](stats_atom) -> caf::result<cluster_statistics> { return on_stats(self); },
    [=](add_device_atom, device_allocator_actor handle) -> caf::result<device_info> {
      return on_add_device(self, std::move(handle));
    },
    [=](remove_device_atom, std::int32_t device) -> caf::result<ok_atom> {
      return on_remove_device(self, device);
    },
    [=](info_atom) -> caf::result<std::vector<device_info>> { return on_info(self); },
    [=](status_atom) -> caf::result<balancer_status> { return on_status(self); },
  };
}

} // namespace gpumem::actors
