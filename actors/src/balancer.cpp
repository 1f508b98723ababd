// The balancer actor: its behavior, the devices it routes to, their figures, and the
// deadlines of what it asked them.

#include "gpumem/actors/balancer.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>
#include <caf/type_erased_tuple.hpp>
#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"

namespace gpumem::actors {

using namespace messages;

const char* to_string(routing_policy policy) noexcept {
  for (const auto& [name, value] : routing_policy_names)
    if (value == policy)
      return name.data();
  return "?";
}

namespace balancing {

namespace {

/// Private messages, caught by the default handler: the periodic refresh of every
/// device's figures, and the sweep of overdue requests.
using refresh_atom = caf::atom_constant<caf::atom("gpm_refrsh")>;
using sweep_atom = caf::atom_constant<caf::atom("gpm_sweep")>;

void schedule_refresh(balancer_pointer self) {
  auto interval = self->state.options.refresh_interval;
  if (interval.count() > 0)
    caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), interval, refresh_atom::value);
}

/// A tenth of the shorter timeout (at least a millisecond): how late a timeout fires.
caf::timespan sweep_period(const balancer_options& options) {
  auto shorter = std::min(options.request_timeout, options.transition_timeout);
  return std::max<caf::timespan>(std::chrono::milliseconds{1}, shorter / 10);
}

void apply_info(balancer_state& st, const device_info& info) {
  if (auto* d = find_device(st, info.device))
    d->info = info;
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

void forget_device(balancer_state& st, std::int32_t device) {
  st.devices.erase(device);
  for (auto j = st.affinity.begin(); j != st.affinity.end();)
    j = j->second == device ? st.affinity.erase(j) : std::next(j);
}

caf::result<device_info> on_add_device(balancer_pointer self, device_allocator_actor handle) {
  if (!handle)
    return make_error(gpumem_errc::invalid_config, "add_device: an invalid allocator handle");
  auto rp = self->make_response_promise<device_info>();
  ask<device_info>(
    self, -1, handle, "add_device (info)", deadline_kind::request,
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
    [=](caf::error e) mutable { rp.deliver(std::move(e)); }, ignore_late{}, info_atom::value);
  return rp;
}

caf::result<ok_atom> on_remove_device(balancer_pointer self, std::int32_t device) {
  auto& st = self->state;
  auto i = st.devices.find(device);
  if (i == st.devices.end())
    return unknown_device(device);
  self->demonitor(i->second.handle.address());
  forget_device(st, device);
  spdlog::info("balancer: device {} removed", device);
  return ok_atom::value;
}

void on_down(balancer_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  for (auto& [device, d] : st.devices)
    if (d.handle.address() == msg.source) {
      spdlog::warn("balancer: device {} went down ({}); no longer routed to", device,
                   caf::to_string(msg.reason));
      forget_device(st, device);
      return;
    }
}

} // namespace

// -- shared by the balancer's files --------------------------------------------------

std::string device_name(std::int32_t device) {
  return device < 0 ? std::string{"the device"} : "device " + std::to_string(device);
}

std::string describe(const caf::error& e) {
  auto code = gpumem_code(e);
  if (!code)
    return caf::to_string(e);
  auto message = error_message(e);
  return message.empty() ? std::string{to_string(*code)}
                         : std::string{to_string(*code)} + ": " + message;
}

caf::error unknown_device(std::int32_t device) {
  return make_error(gpumem_errc::unknown_device,
                    device_name(device) + ": no such device behind this balancer");
}

caf::error downstream_error(std::int32_t device, const char* what, caf::error e) {
  if (gpumem_code(e))
    return e;
  return make_error(gpumem_errc::device_failure,
                    device_name(device) + ": " + what + " failed: " + caf::to_string(e));
}

caf::error timeout_error(const balancer_state& st, std::int32_t device, const char* what,
                         deadline_kind kind) {
  auto limit = kind == deadline_kind::request ? st.options.request_timeout
                                              : st.options.transition_timeout;
  return make_error(gpumem_errc::timeout, device_name(device) + " did not answer " + what +
                                            " within " + std::to_string(limit.count()) +
                                            " ms");
}

caf::error terminated_error(std::int32_t device, const char* what) {
  return make_error(gpumem_errc::device_failure, "the balancer terminated while " +
                                                   device_name(device) + "'s answer to " +
                                                   what + " was pending");
}

device_entry* find_device(balancer_state& st, std::int32_t device) {
  auto i = st.devices.find(device);
  return i == st.devices.end() ? nullptr : &i->second;
}

targets all_devices(const balancer_state& st) {
  targets result;
  for (auto& [id, d] : st.devices)
    result.emplace_back(id, d.handle);
  return result;
}

void arm_sweep(balancer_pointer self) {
  auto& st = self->state;
  if (st.sweep_armed)
    return;
  st.sweep_armed = true;
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), sweep_period(st.options),
                         sweep_atom::value);
}

void sweep(balancer_pointer self) {
  auto& st = self->state;
  st.sweep_armed = false;
  auto now = self->clock().now();
  auto expired = st.requests.expire(now) + st.transitions.expire(now);
  if (expired > 0)
    spdlog::warn("balancer: {} request(s) timed out", expired);
  if (st.requests.open() + st.transitions.open() > 0)
    arm_sweep(self);
}

void refresh(balancer_pointer self, std::int32_t device) {
  auto* d = find_device(self->state, device);
  if (!d)
    return;
  auto handle = d->handle;
  ask<device_info>(
    self, device, handle, "info", deadline_kind::request,
    [self](device_info& info) { apply_info(self->state, info); },
    [device](caf::error e) {
      spdlog::warn("balancer: refreshing device {} failed: {}", device, describe(e));
    },
    ignore_late{}, info_atom::value);
  ask<device_status>(
    self, device, handle, "status", deadline_kind::request,
    [self](device_status& s) { self->state.pressure[s.device] = s.pressure; },
    [](caf::error) {}, ignore_late{}, status_atom::value);
}

} // namespace balancing

balancer_state::~balancer_state() {
  terminating = true;
  auto failed = requests.expire_all() + transitions.expire_all();
  if (failed > 0)
    spdlog::warn("balancer: terminated with {} request(s) in flight; answered with errors",
                 failed);
}

balancer_actor::behavior_type balancer(balancer_pointer self, balancer_options options) {
  using namespace balancing;
  auto& st = self->state;
  st.options = options;
  if (st.options.request_timeout.count() <= 0)
    st.options.request_timeout = std::chrono::milliseconds{10000};
  if (st.options.transition_timeout.count() <= 0)
    st.options.transition_timeout = std::chrono::milliseconds{300000};
  self->set_down_handler([self](caf::down_msg& msg) { on_down(self, msg); });
  self->set_default_handler(
    [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
      auto self = static_cast<balancer_pointer>(ptr);
      auto& content = x.content();
      if (content.match_elements<pressure_event>()) {
        on_pressure(self, content.get_as<pressure_event>(0));
        return caf::message{};
      }
      if (content.match_elements<sweep_atom>()) {
        sweep(self);
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
    [=](allocate_atom, allocation_request& request) -> caf::result<region_handle> {
      return on_allocate(self, std::move(request));
    },
    [=](deallocate_atom, region_handle h) -> caf::result<ok_atom> {
      return on_deallocate(self, h);
    },
    [=](touch_atom, region_handle h) -> caf::result<ok_atom> { return on_touch(self, h); },
    [=](batch_allocate_atom,
        batch_allocation_request& batch) -> caf::result<batch_allocation_response> {
      return on_batch(self, std::move(batch));
    },
    [=](batch_deallocate_atom, batch_deallocation_request& batch) -> caf::result<ok_atom> {
      return on_batch_free(self, std::move(batch));
    },
    [=](sleep_all_atom, sleep_policy policy) -> caf::result<std::vector<transition_report>> {
      return on_sleep_all(self, std::move(policy));
    },
    [=](wake_all_atom,
        std::vector<std::string> tags) -> caf::result<std::vector<transition_report>> {
      return on_wake_all(self, std::move(tags));
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
