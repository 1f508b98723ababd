// Sleep and wake: back up, release, map again at the same addresses, restore.
// Both run as a transition that advance() moves on; failures roll back completely.

#include <algorithm>
#include <set>

#include "engine_impl.hpp"

namespace gpumem::core {

using namespace detail;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

bool contains(const std::vector<std::uint32_t>& list, std::uint32_t value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

} // namespace

engine_result<std::vector<std::uint32_t>> engine::impl::named_tags(
  const std::vector<std::string>& names, bool asleep, const char* verb) const {
  std::vector<std::uint32_t> found;
  for (const auto& name : names) {
    auto t = find_tag(name);
    if (!t)
      return engine_error{engine_errc::invalid_tag, std::string(verb) + ": no tag '" + name + "'"};
    if (tags[*t].asleep != asleep)
      return engine_error{engine_errc::invalid_transition,
                          std::string(verb) + ": tag '" + name + "' is "
                            + (asleep ? "not asleep" : "already asleep")};
    if (!contains(found, *t))
      found.push_back(*t);
  }
  return found;
}

transition engine::impl::start_transition(transition_kind kind,
                                          const std::vector<std::uint32_t>& which) const {
  transition tr;
  tr.kind = kind;
  tr.tags = which;
  tr.previous = current_state();
  tr.started = clock_type::now();
  tr.report.kind = kind;
  for (auto t : which)
    tr.report.tags.push_back(tags[t].name);
  return tr;
}

engine_result<void> engine::impl::begin_sleep(const sleep_policy& policy, commit_mode mode) {
  if (active)
    return engine_error{engine_errc::transition_in_progress,
                        "sleep: another sleep or wake is in progress"};
  std::vector<std::uint32_t> sleeping;
  if (policy.tags.empty()) {
    for (std::uint32_t t = 0; t < tags.size(); ++t)
      if (!tags[t].asleep)
        sleeping.push_back(t);
  } else {
    auto named = named_tags(policy.tags, false, "sleep");
    if (!named)
      return named.error();
    sleeping = std::move(named).value();
  }
  if (sleeping.empty())
    return engine_error{engine_errc::invalid_transition, "sleep: no awake tag to put to sleep"};
  // The backups must see what the client's queued kernels write, and the unmap that
  // follows must not pull memory from under them.
  if (auto settled = settle("sleep"); !settled) {
    ++stats.failed_transitions;
    return settled.error();
  }
  std::set<std::string, std::less<>> keep(policy.backup_tags.begin(), policy.backup_tags.end());

  auto tr = start_transition(transition_kind::sleep, sleeping);
  tr.mode = mode;

  std::optional<cuda::device_error> failure;
  regions.for_each([&](std::uint32_t slot, region_record& r) {
    auto t = pools[r.pool].tag;
    if (failure || !contains(sleeping, t) || !keep.count(tags[t].name))
      return;
    auto room = backups.reserve(r.info.requested);
    if (!room) {
      failure = room.error();
      return;
    }
    r.backup = *room;
    for (std::size_t offset = 0; offset < r.info.requested; offset += config.copy_piece)
      tr.pending.push_back({slot, offset, std::min(config.copy_piece, r.info.requested - offset)});
  });
  if (failure) {
    regions.for_each([&](std::uint32_t, region_record& r) {
      if (r.backup != nullptr && contains(sleeping, pools[r.pool].tag)) {
        backups.release(r.info.requested);
        r.backup = nullptr;
      }
    });
    ++stats.failed_transitions;
    return engine_error{engine_errc::device_failure,
                        "sleep: no host memory for the backups: " + failure->to_string(), *failure};
  }
  active = std::move(tr);
  return {};
}

engine_result<void> engine::impl::begin_wake(const std::vector<std::string>& names,
                                             commit_mode mode) {
  if (active)
    return engine_error{engine_errc::transition_in_progress,
                        "wake: another sleep or wake is in progress"};
  if (auto ok = usable("wake"); !ok)
    return ok.error();
  std::vector<std::uint32_t> waking;
  if (names.empty()) {
    // Weights first: what the rest was computed from comes back before the rest.
    if (auto w = find_tag("weights"); w && tags[*w].asleep)
      waking.push_back(*w);
    std::vector<std::uint32_t> others;
    for (std::uint32_t t = 0; t < tags.size(); ++t)
      if (tags[t].asleep && !contains(waking, t))
        others.push_back(t);
    std::sort(others.begin(), others.end(),
              [&](auto a, auto b) { return tags[a].name < tags[b].name; });
    waking.insert(waking.end(), others.begin(), others.end());
  } else {
    auto named = named_tags(names, true, "wake");
    if (!named)
      return named.error();
    waking = std::move(named).value();
  }
  if (waking.empty())
    return engine_error{engine_errc::invalid_transition, "wake: no tag is asleep"};

  // Admission: all the memory, plus the margin, must be free before anything changes.
  std::vector<std::uint32_t> to_map;
  std::size_t needed = 0;
  for (auto t : waking)
    for (std::uint32_t s = 0; s < segments.size(); ++s)
      if (segments[s].live && !segments[s].mapped && pools[segments[s].pool].tag == t) {
        to_map.push_back(s);
        needed += segments[s].size;
      }
  auto device = backend.memory(config.device);
  if (!device) {
    observe(device.error());
    return engine_error{engine_errc::device_failure,
                        "wake: cannot read free memory: " + device.error().to_string(),
                        device.error()};
  }
  // Cached segments count as free: their chunks are reused before new ones are made.
  if (device->free + cached_bytes < needed + config.wake_margin)
    return engine_error{engine_errc::insufficient_memory,
                        "wake: needs " + format_bytes(needed) + " plus a margin of "
                          + format_bytes(config.wake_margin) + ", but device "
                          + std::to_string(config.device) + " has " + format_bytes(device->free)
                          + " free of " + format_bytes(device->total) + " (and "
                          + format_bytes(cached_bytes) + " cached)"};

  auto tr = start_transition(transition_kind::wake, waking);
  tr.mode = mode;
  for (auto s : to_map) {
    if (auto mapped = map_segment(s); !mapped) {
      for (auto done : tr.mapped_segments)
        unmap_segment(done);
      ++stats.failed_transitions;
      return engine_error{mapped.error().code(),
                          "wake: mapping memory failed, every tag stays asleep: "
                            + mapped.error().message(),
                          mapped.error().device()};
    }
    tr.mapped_segments.push_back(s);
    tr.report.bytes_mapped += segments[s].size;
  }
  regions.for_each([&](std::uint32_t slot, region_record& r) {
    if (r.info.state != region_state::backed_up || !contains(waking, pools[r.pool].tag))
      return;
    for (std::size_t offset = 0; offset < r.info.requested; offset += config.copy_piece)
      tr.pending.push_back({slot, offset, std::min(config.copy_piece, r.info.requested - offset)});
  });
  active = std::move(tr);
  return {};
}

std::optional<engine_result<transition_report>> engine::impl::advance(bool block) {
  if (!active)
    return engine_result<transition_report>(
      engine_error{engine_errc::invalid_transition, "advance: no sleep or wake is in progress"});
  auto& tr = *active;
  if (tr.prepared)
    return engine_result<transition_report>(
      engine_error{engine_errc::invalid_transition,
                   "advance: the transition is prepared; commit or abort it"});
  // Keep the copy engine fed: up to copies_in_flight pieces at once.
  while (tr.in_flight.size() < static_cast<std::size_t>(config.copies_in_flight)
         && !tr.pending.empty()) {
    auto job = tr.pending.front();
    const auto& r = regions.at(job.region_slot);
    auto copy = tr.kind == transition_kind::sleep
                  ? backend.copy_to_host_async(config.device, r.backup + job.offset,
                                               r.info.address + job.offset, job.size)
                  : backend.copy_to_device_async(config.device, r.info.address + job.offset,
                                                 r.backup + job.offset, job.size);
    if (!copy)
      return engine_result<transition_report>(abort_transition(copy.error()));
    tr.in_flight.push_back(std::move(copy).value());
    tr.pending.pop_front();
  }
  auto waited_from = clock_type::now();
  while (!tr.in_flight.empty()) {
    auto& oldest = tr.in_flight.front();
    if (!block && !oldest->ready())
      break;
    auto outcome = oldest->wait();
    tr.in_flight.pop_front();
    if (!outcome)
      return engine_result<transition_report>(abort_transition(outcome.error()));
    if (block)
      break;  // back to the top to start the next piece
  }
  tr.copy_time += clock_type::now() - waited_from;
  if (!tr.pending.empty() || !tr.in_flight.empty())
    return std::nullopt;

  if (tr.mode == commit_mode::on_commit) {
    // Phase one is done and nothing is lost yet: the owner commits or aborts.
    tr.prepared = true;
    regions.for_each([&](std::uint32_t, region_record& r) {
      if (!contains(tr.tags, pools[r.pool].tag))
        return;
      if (tr.kind == transition_kind::sleep && r.backup != nullptr)
        tr.report.bytes_backed_up += r.info.requested;
      if (tr.kind == transition_kind::wake && r.info.state == region_state::backed_up)
        tr.report.bytes_restored += r.info.requested;
    });
    tr.report.seconds = seconds(clock_type::now() - tr.started);
    tr.report.copy_seconds = seconds(tr.copy_time);
    return engine_result<transition_report>(tr.report);
  }
  return engine_result<transition_report>(finish_transition());
}

transition_report engine::impl::finish_transition() {
  auto& tr = *active;
  // The prepared figures are recounted by finish_sleep / finish_wake.
  tr.report.bytes_backed_up = 0;
  tr.report.bytes_restored = 0;
  if (tr.kind == transition_kind::sleep)
    finish_sleep();
  else
    finish_wake();
  auto report = std::move(active->report);
  active.reset();
  return report;
}

void engine::impl::roll_back_transition() {
  auto& tr = *active;
  for (auto& copy : tr.in_flight)
    (void)copy->wait();
  if (tr.kind == transition_kind::sleep) {
    // Nothing was unmapped yet: dropping the backups is the whole rollback.
    regions.for_each([&](std::uint32_t, region_record& r) {
      if (r.backup != nullptr && contains(tr.tags, pools[r.pool].tag)) {
        backups.release(r.info.requested);
        r.backup = nullptr;
      }
    });
  } else {
    // The backups are untouched (a wake only reads them): unmapping again leaves the
    // tags asleep, wakeable, as they were.
    for (auto s : tr.mapped_segments)
      unmap_segment(s);
  }
  active.reset();
}

engine_error engine::impl::abort_transition(const cuda::device_error& cause) {
  observe(cause);
  // A sticky error killed the device's context: its memory and our copies are gone
  // with it, so nothing can be promised back; the rollback only settles the books.
  const char* what = lost ? (active->kind == transition_kind::sleep
                               ? "sleep failed and the device is lost (a sticky CUDA error: "
                                 "restart the process); nothing more is asked of it: "
                               : "wake failed and the device is lost (a sticky CUDA error: "
                                 "restart the process); nothing more is asked of it: ")
                    : active->kind == transition_kind::sleep
                       ? "sleep failed; every tag stays awake with its bytes in place: "
                       : "wake failed; every tag stays asleep with its backups kept: ";
  roll_back_transition();
  ++stats.failed_transitions;
  return engine_error{engine_errc::device_failure, what + cause.to_string(), cause};
}

void engine::impl::finish_sleep() {
  auto& tr = *active;
  regions.for_each([&](std::uint32_t, region_record& r) {
    auto t = pools[r.pool].tag;
    if (!contains(tr.tags, t))
      return;
    if (r.backup != nullptr) {
      r.info.state = region_state::backed_up;
      tr.report.bytes_backed_up += r.info.requested;
    } else {
      r.info.state = region_state::discarded;
      tr.report.bytes_discarded += r.info.requested;
    }
    account(t, &stat_grid::active, -static_cast<std::int64_t>(r.info.size));
  });
  for (std::uint32_t s = 0; s < segments.size(); ++s) {
    auto& seg = segments[s];
    if (!seg.live || !seg.mapped || !contains(tr.tags, pools[seg.pool].tag))
      continue;
    tr.report.bytes_released += seg.size;
    if (seg.cached)
      destroy_segment(s);  // holds nothing: its addresses need not wait for the wake
    else
      unmap_segment(s);
  }
  for (auto t : tr.tags)
    tags[t].asleep = true;
  tr.report.seconds = seconds(clock_type::now() - tr.started);
  tr.report.copy_seconds = seconds(tr.copy_time);
  ++stats.sleeps;
  stats.bytes_backed_up += tr.report.bytes_backed_up;
  stats.bytes_discarded += tr.report.bytes_discarded;
  stats.sleep_seconds += tr.report.seconds;
  stats.sleep_durations.record(tr.report.seconds);
}

void engine::impl::finish_wake() {
  auto& tr = *active;
  regions.for_each([&](std::uint32_t, region_record& r) {
    auto t = pools[r.pool].tag;
    if (!contains(tr.tags, t))
      return;
    if (r.info.state == region_state::backed_up) {
      tr.report.bytes_restored += r.info.requested;
      backups.release(r.info.requested);
      r.backup = nullptr;
    } else {
      r.info.contents_defined = false;  // it was discarded: mapped again, bytes undefined
    }
    r.info.state = region_state::resident;
    account(t, &stat_grid::active, static_cast<std::int64_t>(r.info.size));
  });
  for (auto t : tr.tags)
    tags[t].asleep = false;
  tr.report.seconds = seconds(clock_type::now() - tr.started);
  tr.report.copy_seconds = seconds(tr.copy_time);
  ++stats.wakes;
  stats.bytes_restored += tr.report.bytes_restored;
  stats.wake_seconds += tr.report.seconds;
  stats.wake_durations.record(tr.report.seconds);
}

} // namespace gpumem::core
