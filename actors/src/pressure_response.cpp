// The device allocator's answers to pressure events: trim at warning; defragment, then
// offload the least recently used offloadable tags to host at critical; wake them at
// normal. Each answer is timed from the level change to the memory released.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "device_allocator_detail.hpp"
#include "protocol_convert.hpp"

namespace gpumem::actors {

using namespace messages;

namespace detail {

namespace {

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// When the level changed: the monitor stamps its reading with the system clock, which
/// this host shares. A missing stamp, or one ahead of this clock (another host's),
/// cannot be compared: the event's arrival stands in for it.
std::int64_t change_time_ns(const pressure_event& event) {
  auto now = system_now_ns();
  return event.time_ns > 0 && event.time_ns <= now ? event.time_ns : now;
}

double ms_since(std::int64_t start_ns) {
  return static_cast<double>(std::max<std::int64_t>(0, system_now_ns() - start_ns)) / 1e6;
}

std::string join(const std::vector<std::string>& tags) {
  std::string result;
  for (const auto& t : tags)
    result += (result.empty() ? "" : ", ") + t;
  return "[" + result + "]";
}

/// A response ran to the end: `bytes` released `ms` after the level change.
void record(device_allocator_state& st, std::uint64_t bytes, double ms) {
  auto& r = st.response;
  ++r.responses;
  r.last_ms = ms;
  r.max_ms = std::max(r.max_ms, ms);
  r.total_ms += ms;
  r.durations.record(ms / 1e3);
  r.last_bytes = bytes;
}

/// The awake offloadable tags with live regions, least recently used first (a tag is as
/// recent as its newest region), as many as bring the device's use below critical -
/// hysteresis; all of them where even that does not.
std::vector<std::string> choose_offload(const device_allocator_state& st,
                                        const pressure_event& event,
                                        std::uint64_t released) {
  struct candidate {
    std::string tag;
    std::uint64_t last_use_ns = 0;
    std::uint64_t bytes = 0;
  };
  std::vector<candidate> candidates;
  const auto& tag_stats = st.engine->statistics().tags;
  for (const auto& tag : st.options.pressure.offloadable_tags) {
    auto listed = std::any_of(candidates.begin(), candidates.end(),
                              [&](const candidate& c) { return c.tag == tag; });
    if (tag.empty() || listed || st.engine->tag_asleep(tag))
      continue;
    auto regions = st.engine->regions(tag);
    if (regions.empty())
      continue;
    candidate c{tag, 0, 0};
    for (const auto& r : regions)
      c.last_use_ns = std::max(c.last_use_ns, r.last_use_ns);
    if (auto i = tag_stats.find(tag); i != tag_stats.end())
      c.bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, i->second.reserved.current));
    candidates.push_back(std::move(c));
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return a.last_use_ns < b.last_use_ns; });

  auto used = event.total_bytes - std::min(event.available_bytes, event.total_bytes);
  used = used > released ? used - released : 0;
  const auto& p = st.options.pressure;
  auto target = (p.critical - p.hysteresis) * static_cast<double>(event.total_bytes);
  std::vector<std::string> chosen;
  for (const auto& c : candidates) {
    if (static_cast<double>(used) < target)
      break;
    chosen.push_back(c.tag);
    used = used > c.bytes ? used - c.bytes : 0;
  }
  return chosen;
}

void at_warning(device_allocator_pointer self, pressure_level previous, std::int64_t started) {
  auto& st = self->state;
  if (!st.options.pressure.trim_at_warning) {
    spdlog::info("device {}: pressure {} -> warning; trimming is off", st.device,
                 to_string(previous));
    return;
  }
  auto r = st.engine->trim();
  auto ms = ms_since(started);
  record(st, r.bytes_released, ms);
  spdlog::info("device {}: pressure {} -> warning: trimmed {} B in {} segments, {:.3f} ms "
               "after the level change",
               st.device, to_string(previous), r.bytes_released, r.segments_released, ms);
}

void at_critical(device_allocator_pointer self, const pressure_event& event,
                 pressure_level previous, std::int64_t started) {
  auto& st = self->state;
  auto d = st.engine->defragment();
  auto released = d.bytes_released_cached + d.bytes_released_tails;
  auto defragmented_ms = ms_since(started);
  std::vector<std::string> tags;
  if (st.options.pressure.offload_at_critical)
    tags = choose_offload(st, event, released);
  if (tags.empty()) {
    record(st, released, defragmented_ms);
    spdlog::info("device {}: pressure {} -> critical: defragmented, released {} B cached and "
                 "{} B of tails (fragmentation {:.3f} -> {:.3f}) {:.3f} ms after the level "
                 "change; {}",
                 st.device, to_string(previous), d.bytes_released_cached,
                 d.bytes_released_tails, d.fragmentation_before, d.fragmentation_after,
                 defragmented_ms,
                 st.options.pressure.offload_at_critical ? "nothing to offload"
                                                         : "offloading is off");
    return;
  }
  // An offload is a sleep of those tags that keeps their bytes on the host.
  auto policy = core::sleep_policy::backing_up(tags);
  policy.tags = tags;
  if (auto begun = st.engine->begin_sleep(policy); !begun) {
    record(st, released, defragmented_ms);
    spdlog::warn("device {}: pressure {} -> critical: defragmented, released {} B in {:.3f} "
                 "ms; offloading {} refused: {}",
                 st.device, to_string(previous), released, defragmented_ms, join(tags),
                 begun.error().to_string());
    return;
  }
  st.response.started_ns = started;
  st.response.defragmented_bytes = released;
  st.response.defragmented_ms = defragmented_ms;
  spdlog::info("device {}: pressure {} -> critical: defragmented, released {} B; offloading "
               "{} to host, least recently used first",
               st.device, to_string(previous), released, join(tags));
  enter_transition(self, core::transition_kind::sleep, transition_origin::pressure);
}

/// Must match device_allocator.cpp's private retry message.
using retry_atom = caf::atom_constant<caf::atom("gpm_retry")>;

/// The wake of offloaded tags failed or was refused with `why`: they stay offloaded,
/// and while pressure stays normal the wake is tried again after a back-off that
/// doubles up to wake_retry_max (pressure changes reset it; status tells why).
void wake_failed(device_allocator_pointer self, const std::string& why) {
  auto& st = self->state;
  auto& r = st.response;
  const auto& p = st.options.pressure;
  r.retry_delay = r.retry_delay.count() == 0
                    ? p.wake_retry_initial
                    : std::min(p.wake_retry_max, r.retry_delay * 2);
  r.retry_delay = std::max(r.retry_delay, std::chrono::milliseconds{1});
  r.wake_failure = why;
  auto generation = ++r.retry_generation;
  spdlog::warn("device {}: {} stay offloaded, tried again in {} ms while pressure stays "
               "normal: {}",
               st.device, join(r.offloaded), r.retry_delay.count(), why);
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), r.retry_delay, retry_atom::value,
                         generation);
}

/// Pressure left normal, or nothing waits any more: no retry is due.
void cancel_retry(pressure_response_state& r) {
  ++r.retry_generation;
  r.retry_delay = std::chrono::milliseconds{0};
  r.wake_failure.clear();
}

/// Wakes what pressure offloaded; a refusal keeps them offloaded for the next try.
void wake_offloaded(device_allocator_pointer self) {
  auto& st = self->state;
  auto& offloaded = st.response.offloaded;
  st.response.wake_due = false;
  std::erase_if(offloaded, [&](const auto& tag) { return !st.engine->tag_asleep(tag); });
  if (offloaded.empty()) {
    cancel_retry(st.response);
    return;
  }
  if (auto begun = st.engine->begin_wake(offloaded); !begun) {
    wake_failed(self, "wake refused: " + begun.error().to_string());
    return;
  }
  spdlog::info("device {}: waking offloaded {}", st.device, join(offloaded));
  enter_transition(self, core::transition_kind::wake, transition_origin::pressure);
}

} // namespace

void on_pressure(device_allocator_pointer self, const pressure_event& event) {
  auto& st = self->state;
  if (event.device != st.device) {
    spdlog::warn("device {}: ignored a pressure event for device {}", st.device, event.device);
    return;
  }
  auto started = change_time_ns(event);
  auto previous = st.pressure;
  st.pressure = event.level;
  // A wake is due only while pressure stays normal.
  st.response.wake_due = st.response.wake_due && event.level == pressure_level::normal;
  if (event.level != pressure_level::normal)
    cancel_retry(st.response);
  if (st.phase == allocator_phase::transition || st.phase == allocator_phase::prepared) {
    // What is offloaded by the time the transition ends (it may be an offload) wakes then.
    auto offloading = st.origin == transition_origin::pressure &&
                      st.transition == core::transition_kind::sleep;
    if (event.level == pressure_level::normal && st.options.pressure.wake_on_normal &&
        (offloading || !st.response.offloaded.empty())) {
      st.response.wake_due = true;
      spdlog::info("device {}: pressure {} -> normal during a transition; offloaded tags "
                   "wake when it ends",
                   st.device, to_string(previous));
      return;
    }
    spdlog::info("device {}: pressure {} -> {} during a transition; no reaction", st.device,
                 to_string(previous), to_string(event.level));
    return;
  }
  switch (event.level) {
    case pressure_level::normal:
      spdlog::info("device {}: pressure {} -> normal", st.device, to_string(previous));
      if (st.options.pressure.wake_on_normal && !st.response.offloaded.empty())
        wake_offloaded(self);
      break;
    case pressure_level::warning:
      at_warning(self, previous, started);
      break;
    case pressure_level::critical:
      at_critical(self, event, previous, started);
      break;
  }
}

void pressure_transition_done(device_allocator_pointer self, core::transition_kind kind,
                              const core::engine_result<core::transition_report>& result) {
  auto& st = self->state;
  auto& r = st.response;
  if (kind == core::transition_kind::wake) {
    if (result) {
      client_woke(st, result->tags);
      ++r.offload_wakes;
    } else if (st.pressure == pressure_level::normal && st.options.pressure.wake_on_normal) {
      wake_failed(self, "wake failed: " + result.error().to_string());
    }
    return;
  }
  if (!result) {
    // Rolled back: the tags stay awake; the defragment is what this response released.
    record(st, r.defragmented_bytes, r.defragmented_ms);
    return;
  }
  for (const auto& tag : result->tags)
    if (std::find(r.offloaded.begin(), r.offloaded.end(), tag) == r.offloaded.end())
      r.offloaded.push_back(tag);
  ++r.offloads;
  r.bytes_offloaded += result->bytes_backed_up;
  auto bytes = r.defragmented_bytes + result->bytes_released;
  auto ms = ms_since(r.started_ns);
  record(st, bytes, ms);
  spdlog::info("device {}: critical response done: offloaded {} ({} B backed up), released "
               "{} B in all {:.3f} ms after the level change",
               st.device, join(result->tags), result->bytes_backed_up, bytes, ms);
}

void client_woke(device_allocator_state& st, const std::vector<std::string>& tags) {
  std::erase_if(st.response.offloaded, [&](const auto& tag) {
    return std::find(tags.begin(), tags.end(), tag) != tags.end();
  });
  if (st.response.offloaded.empty())
    cancel_retry(st.response);
}

void on_wake_retry(device_allocator_pointer self, std::uint64_t generation) {
  auto& st = self->state;
  if (generation != st.response.retry_generation || st.pressure != pressure_level::normal ||
      !st.options.pressure.wake_on_normal)
    return;  // stale: pressure changed, or the tags woke meanwhile
  ++st.response.wake_retries;
  if (st.phase == allocator_phase::transition || st.phase == allocator_phase::prepared) {
    st.response.wake_due = true;  // after_transition tries it
    return;
  }
  wake_offloaded(self);
}

void after_transition(device_allocator_pointer self) {
  auto& st = self->state;
  if (st.response.wake_due && st.pressure == pressure_level::normal)
    wake_offloaded(self);
  st.response.wake_due = false;
}

void add_response_status(const device_allocator_state& st, device_status& status) {
  const auto& r = st.response;
  status.offloaded_tags = r.offloaded;
  status.pressure_responses = r.responses;
  status.last_response_ms = r.last_ms;
  status.max_response_ms = r.max_ms;
  status.total_response_ms = r.total_ms;
  status.response_durations = to_message(r.durations);
  status.last_response_bytes = r.last_bytes;
  status.offloads = r.offloads;
  status.offload_wakes = r.offload_wakes;
  status.bytes_offloaded = r.bytes_offloaded;
  status.offload_wake_retries = r.wake_retries;
  if (!r.offloaded.empty()) {
    if (st.pressure != pressure_level::normal)
      status.offload_wait_reason = std::string{"pressure is "} + to_string(st.pressure) +
                                   "; they wake when it is back to normal";
    else if (!st.options.pressure.wake_on_normal)
      status.offload_wait_reason = "wake-on-normal is off; a client's wake wakes them";
    else if (!r.wake_failure.empty())
      status.offload_wait_reason = r.wake_failure + "; next try in " +
                                   std::to_string(r.retry_delay.count()) + " ms";
  }
}

} // namespace detail

} // namespace gpumem::actors
