#include "gpumem/actors/pressure_monitor.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
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
#include <spdlog/spdlog.h>

namespace gpumem::actors {

using namespace messages;

namespace {

/// Private: the actor tells itself to read the devices. Not in the typed interface;
/// sent anonymously to the untyped handle and caught by the default handler.
using poll_atom = caf::atom_constant<caf::atom("gpm_ppoll")>;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

double used_fraction(const pressure_event& e) {
  if (e.total_bytes == 0)
    return 0;
  auto used = e.total_bytes - std::min(e.available_bytes, e.total_bytes);
  return static_cast<double>(used) / static_cast<double>(e.total_bytes);
}

void schedule_poll(pressure_monitor_pointer self) {
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), self->state.settings.period,
                         poll_atom::value);
}

std::size_t subscribers_of(const pressure_monitor_state& st, std::int32_t device) {
  return static_cast<std::size_t>(std::count_if(
    st.subscribers.begin(), st.subscribers.end(), [&](const auto& s) { return s.covers(device); }));
}

/// Tells every subscriber of the event's device.
void broadcast(pressure_monitor_pointer self, const pressure_event& event) {
  auto& st = self->state;
  for (auto& sub : st.subscribers)
    if (sub.covers(event.device)) {
      self->send(sub.handle, event);
      ++st.events_sent;
    }
}

/// Reads one device; on a level change updates the reading and tells every subscriber.
void read_device(pressure_monitor_pointer self, pressure_monitor_state::device_reading& d) {
  auto& st = self->state;
  auto device = d.latest.device;
  auto mem = st.backend->memory(device);
  if (!mem || mem->total == 0) {
    ++d.failures;
    if (!d.failing)
      spdlog::warn("pressure: device {}: memory read failed, keeping level {}: {}", device,
                   to_string(d.latest.level),
                   mem ? std::string{"the device reports 0 bytes in total"}
                       : mem.error().to_string());
    d.failing = true;
    return;
  }
  if (d.failing)
    spdlog::info("pressure: device {}: memory reads work again after {} failure(s)", device,
                 d.failures);
  d.failing = false;
  pressure_event reading;
  reading.device = device;
  reading.available_bytes = mem->free;
  reading.total_bytes = mem->total;
  reading.time_ns = now_ns();
  reading.previous = d.latest.level;
  reading.level = next_pressure_level(d.latest.level, used_fraction(reading), st.settings);
  d.latest = reading;
  if (reading.level == reading.previous)
    return;
  spdlog::info("pressure: device {}: {} -> {} ({:.1f}% in use, {} of {} B free); telling {} "
               "subscriber(s)",
               device, to_string(reading.previous), to_string(reading.level),
               100.0 * used_fraction(reading), reading.available_bytes, reading.total_bytes,
               subscribers_of(st, device));
  broadcast(self, reading);
}

void poll(pressure_monitor_pointer self) {
  auto& st = self->state;
  ++st.polls;
  for (auto& d : st.devices)
    read_device(self, d);
}

std::vector<pressure_event> latest_readings(const pressure_monitor_state& st) {
  std::vector<pressure_event> result;
  result.reserve(st.devices.size());
  for (const auto& d : st.devices)
    result.push_back(d.latest);
  return result;
}

bool same_actor(const pressure_subscriber_actor& a, const caf::actor_addr& b) {
  return a.address() == b;
}

/// `sub` hears of `device` from now on (every_device: of all). Answers ok, or
/// unknown_device for a device the monitor does not watch.
caf::result<ok_atom> subscribe(pressure_monitor_pointer self, pressure_subscriber_actor sub,
                               std::int32_t device) {
  auto& st = self->state;
  auto watched = std::any_of(st.devices.begin(), st.devices.end(),
                             [&](const auto& d) { return d.latest.device == device; });
  if (device != every_device && !watched) {
    std::string list;
    for (const auto& d : st.devices)
      list += (list.empty() ? "" : ", ") + std::to_string(d.latest.device);
    return make_error(gpumem_errc::unknown_device,
                      "pressure monitor: device " + std::to_string(device) +
                        " is not watched (watching " + list + "; -1: every device)");
  }
  if (!sub)
    return ok_atom::value;
  auto i = std::find_if(st.subscribers.begin(), st.subscribers.end(),
                        [&](const auto& x) { return x.handle == sub; });
  if (i == st.subscribers.end()) {
    self->monitor(sub);
    st.subscribers.push_back({sub, false, {}});
    i = std::prev(st.subscribers.end());
  } else if (i->all_devices || (device != every_device && i->covers(device))) {
    return ok_atom::value;  // already hears of it
  }
  auto before = *i;
  if (device == every_device) {
    i->all_devices = true;
    i->devices.clear();
  } else {
    i->devices.push_back(device);
  }
  if (device == every_device)
    spdlog::info("pressure: subscriber {} hears of every device ({} subscriber(s))", sub.id(),
                 st.subscribers.size());
  else
    spdlog::info("pressure: subscriber {} hears of device {} ({} subscriber(s))", sub.id(),
                 device, st.subscribers.size());
  // It learns at once of every device it newly covers that is under pressure.
  for (const auto& d : st.devices)
    if (d.latest.level != pressure_level::normal && !before.covers(d.latest.device) &&
        i->covers(d.latest.device)) {
      self->send(sub, d.latest);
      ++st.events_sent;
    }
  return ok_atom::value;
}

messages::pressure_monitor_actor::behavior_type make_behavior(pressure_monitor_pointer self) {
  return {
    [=](subscribe_atom, pressure_subscriber_actor sub) -> caf::result<ok_atom> {
      return subscribe(self, std::move(sub), every_device);
    },
    [=](subscribe_atom, pressure_subscriber_actor sub,
        std::int32_t device) -> caf::result<ok_atom> {
      return subscribe(self, std::move(sub), device);
    },
    [=](unsubscribe_atom, pressure_subscriber_actor sub) -> ok_atom {
      auto& st = self->state;
      auto i = std::find_if(st.subscribers.begin(), st.subscribers.end(),
                            [&](const auto& x) { return x.handle == sub; });
      if (i != st.subscribers.end()) {
        self->demonitor(sub.address());
        st.subscribers.erase(i);
        spdlog::info("pressure: subscriber {} leaves ({} left)", sub.id(),
                     st.subscribers.size());
      }
      return ok_atom::value;
    },
    [=](pressure_atom) -> std::vector<pressure_event> { return latest_readings(self->state); },
    [=](status_atom) -> pressure_monitor_status {
      auto& st = self->state;
      pressure_monitor_status result;
      result.levels = latest_readings(st);
      result.subscribers = st.subscribers.size();
      result.interval_ns = st.settings.period.count();
      result.events_sent = st.events_sent;
      return result;
    },
  };
}

std::string validate_devices(cuda::device_backend& backend,
                             const std::vector<std::int32_t>& devices) {
  if (devices.empty())
    return "no devices to watch";
  auto count = backend.device_count();
  for (std::size_t i = 0; i < devices.size(); ++i) {
    auto d = devices[i];
    if (d < 0)
      return "device " + std::to_string(d) + " is not a device number";
    if (count && d >= *count)
      return "device " + std::to_string(d) + " does not exist (the " +
             std::string{backend.name()} + " backend has " + std::to_string(*count) + ")";
    if (std::find(devices.begin(), devices.begin() + static_cast<std::ptrdiff_t>(i), d) !=
        devices.begin() + static_cast<std::ptrdiff_t>(i))
      return "device " + std::to_string(d) + " is listed twice";
  }
  return {};
}

} // namespace

bool pressure_monitor_state::subscriber::covers(std::int32_t device) const {
  return all_devices || std::find(devices.begin(), devices.end(), device) != devices.end();
}

std::string validate(const pressure_settings& s) {
  auto text = [](double x) { return std::to_string(x); };
  if (s.period.count() <= 0)
    return "period must be positive";
  if (!std::isfinite(s.warning) || !(s.warning > 0))
    return "warning must be above 0, got " + text(s.warning);
  if (!std::isfinite(s.critical) || !(s.critical > s.warning) || !(s.critical <= 1))
    return "critical must be above warning (" + text(s.warning) + ") and at most 1, got " +
           text(s.critical);
  if (!std::isfinite(s.hysteresis) || !(s.hysteresis >= 0) || !(s.hysteresis < s.warning))
    return "hysteresis must be at least 0 and below warning (" + text(s.warning) + "), got " +
           text(s.hysteresis);
  return {};
}

pressure_level next_pressure_level(pressure_level current, double used,
                                   const pressure_settings& s) noexcept {
  if (used >= s.critical)
    return pressure_level::critical;
  if (current == pressure_level::critical && used >= s.critical - s.hysteresis)
    return pressure_level::critical;
  if (used >= s.warning)
    return pressure_level::warning;
  if (current != pressure_level::normal && used >= s.warning - s.hysteresis)
    return pressure_level::warning;
  return pressure_level::normal;
}

messages::pressure_monitor_actor::behavior_type
pressure_monitor(pressure_monitor_pointer self, cuda::device_backend* backend,
                 std::vector<std::int32_t> devices, pressure_settings settings) {
  auto& st = self->state;
  st.backend = backend;
  st.settings = settings;
  auto why = backend ? validate(settings) : std::string{"no backend"};
  if (why.empty())
    why = validate_devices(*backend, devices);
  if (!why.empty()) {
    spdlog::error("pressure: monitor refused to start: {}", why);
    self->quit(make_error(gpumem_errc::invalid_config, "pressure monitor: " + why));
    return make_behavior(self);  // never runs: the actor quits
  }
  for (auto d : devices) {
    pressure_monitor_state::device_reading reading;
    reading.latest.device = d;
    st.devices.push_back(reading);
  }
  self->set_default_handler(
    [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
      if (x.content().match_elements<poll_atom>()) {
        auto self = static_cast<pressure_monitor_pointer>(ptr);
        poll(self);
        schedule_poll(self);
        return caf::message{};
      }
      return caf::sec::unexpected_message;
    });
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& subs = self->state.subscribers;
    auto i = std::find_if(subs.begin(), subs.end(),
                          [&](const auto& x) { return same_actor(x.handle, msg.source); });
    if (i != subs.end()) {
      subs.erase(i);
      spdlog::info("pressure: a subscriber died ({} left)", subs.size());
    }
  });
  spdlog::info("pressure: monitor watches {} device(s) every {} ms (warning {:.3f}, critical "
               "{:.3f}, hysteresis {:.3f})",
               st.devices.size(),
               std::chrono::duration<double, std::milli>(settings.period).count(),
               settings.warning, settings.critical, settings.hysteresis);
  poll(self);  // the first reading, so `pressure` answers something at once
  schedule_poll(self);
  return make_behavior(self);
}

} // namespace gpumem::actors
