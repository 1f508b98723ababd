#include "protocol_convert.hpp"

#include <string>
#include <utility>

namespace gpumem::actors {

namespace {

using core::engine_errc;
using messages::gpumem_errc;

// The protocol promises that its first fourteen codes are the engine's.
template <engine_errc E, gpumem_errc G>
constexpr bool same_code = static_cast<int>(E) == static_cast<int>(G);

static_assert(same_code<engine_errc::zero_size, gpumem_errc::zero_size>);
static_assert(same_code<engine_errc::too_large, gpumem_errc::too_large>);
static_assert(same_code<engine_errc::invalid_alignment, gpumem_errc::invalid_alignment>);
static_assert(same_code<engine_errc::unknown_strategy, gpumem_errc::unknown_strategy>);
static_assert(same_code<engine_errc::invalid_tag, gpumem_errc::invalid_tag>);
static_assert(same_code<engine_errc::unknown_region, gpumem_errc::unknown_region>);
static_assert(same_code<engine_errc::double_free, gpumem_errc::double_free>);
static_assert(same_code<engine_errc::out_of_memory, gpumem_errc::out_of_memory>);
static_assert(same_code<engine_errc::tag_asleep, gpumem_errc::tag_asleep>);
static_assert(same_code<engine_errc::transition_in_progress,
                        gpumem_errc::transition_in_progress>);
static_assert(same_code<engine_errc::invalid_transition, gpumem_errc::invalid_transition>);
static_assert(same_code<engine_errc::insufficient_memory, gpumem_errc::insufficient_memory>);
static_assert(same_code<engine_errc::invalid_config, gpumem_errc::invalid_config>);
static_assert(same_code<engine_errc::device_failure, gpumem_errc::device_failure>);

} // namespace

caf::error to_error(const core::engine_error& e) {
  auto code = static_cast<int>(e.code());
  if (code < 1 || code > static_cast<int>(gpumem_errc::device_failure))
    return messages::make_error(gpumem_errc::device_failure,
                                "unexpected engine error: " + e.to_string());
  return messages::make_error(static_cast<gpumem_errc>(code), e.message());
}

std::optional<core::strategy> to_core(messages::strategy how) noexcept {
  switch (how) {
    case messages::strategy::pooled: return core::strategy::pooled;
    case messages::strategy::first_fit: return core::strategy::first_fit;
    case messages::strategy::dedicated: return core::strategy::dedicated;
    case messages::strategy::configured: break;  // only the allocator knows it
  }
  return std::nullopt;
}

caf::expected<core::allocation_request> to_core(const messages::allocation_request& request,
                                                core::strategy configured) {
  auto how = request.how == messages::strategy::configured ? std::optional{configured}
                                                           : to_core(request.how);
  if (!how)
    return messages::make_error(gpumem_errc::unknown_strategy,
                                "allocate: strategy " +
                                  std::to_string(static_cast<int>(request.how)) +
                                  " is none of pooled, first_fit, dedicated, configured");
  core::allocation_request result;
  result.size = static_cast<std::size_t>(request.size);
  result.tag = request.tag;
  result.how = *how;
  result.alignment = static_cast<std::size_t>(request.alignment);
  return result;
}

caf::expected<core::sleep_policy> to_core(const messages::sleep_policy& policy) {
  core::sleep_policy result;
  switch (policy.level) {
    case 0: result = core::sleep_policy::backing_up(policy.backup_tags); break;
    case 1: result = core::sleep_policy::level(1); break;
    case 2: result = core::sleep_policy::level(2); break;
    default:
      return messages::make_error(gpumem_errc::invalid_config,
                                  "sleep: level " + std::to_string(policy.level) +
                                    " is none of 0 (explicit backups), 1, 2");
  }
  result.tags = policy.tags;
  return result;
}

messages::strategy to_message(core::strategy how) noexcept {
  switch (how) {
    case core::strategy::pooled: return messages::strategy::pooled;
    case core::strategy::first_fit: return messages::strategy::first_fit;
    case core::strategy::dedicated: return messages::strategy::dedicated;
  }
  return messages::strategy::pooled;
}

messages::device_state to_message(core::engine_state state) noexcept {
  switch (state) {
    case core::engine_state::awake: return messages::device_state::awake;
    case core::engine_state::falling_asleep: return messages::device_state::falling_asleep;
    case core::engine_state::asleep: return messages::device_state::asleep;
    case core::engine_state::waking: return messages::device_state::waking;
  }
  return messages::device_state::awake;
}

messages::transition_kind to_message(core::transition_kind kind) noexcept {
  return kind == core::transition_kind::sleep ? messages::transition_kind::sleep
                                              : messages::transition_kind::wake;
}

messages::region_handle to_handle(const core::region_info& region, std::int32_t device) {
  messages::region_handle result;
  result.device = device;
  result.region = region.id;
  result.address = static_cast<std::uint64_t>(region.address);
  result.size = region.size;
  result.requested = region.requested;
  result.tag = region.tag;
  return result;
}

messages::transition_report to_message(const core::transition_report& report,
                                       std::int32_t device) {
  messages::transition_report result;
  result.device = device;
  result.kind = to_message(report.kind);
  result.tags = report.tags;
  result.bytes_backed_up = report.bytes_backed_up;
  result.bytes_discarded = report.bytes_discarded;
  result.bytes_released = report.bytes_released;
  result.bytes_mapped = report.bytes_mapped;
  result.bytes_restored = report.bytes_restored;
  result.seconds = report.seconds;
  result.copy_seconds = report.copy_seconds;
  return result;
}

messages::trim_report to_message(const core::trim_report& report, std::int32_t device) {
  return {device, report.bytes_released, report.segments_released};
}

messages::defragment_report to_message(const core::defragment_report& report,
                                       std::int32_t device) {
  messages::defragment_report result;
  result.device = device;
  result.bytes_released_cached = report.bytes_released_cached;
  result.bytes_released_tails = report.bytes_released_tails;
  result.segments_released = report.segments_released;
  result.fragmentation_before = report.fragmentation_before;
  result.fragmentation_after = report.fragmentation_after;
  return result;
}

messages::stat to_message(const core::stat& s) noexcept {
  return {s.current, s.peak, s.allocated, s.freed};
}

messages::stat_grid to_message(const core::stat_grid& grid) noexcept {
  messages::stat_grid result;
  result.allocated = to_message(grid.allocated);
  result.requested = to_message(grid.requested);
  result.active = to_message(grid.active);
  result.reserved = to_message(grid.reserved);
  result.cached = to_message(grid.cached);
  result.allocations = grid.allocations;
  result.frees = grid.frees;
  return result;
}

messages::duration_buckets to_message(const core::duration_buckets& buckets) {
  const auto& b = core::duration_buckets::upper_bounds;
  return {{b.begin(), b.end()}, {buckets.counts.begin(), buckets.counts.end()}};
}

messages::statistics to_message(const core::engine_statistics& stats, std::int32_t device) {
  messages::statistics result;
  result.device = device;
  result.total = to_message(stats.total);
  result.tags.reserve(stats.tags.size());
  for (const auto& [tag, grid] : stats.tags)  // std::map: tag name order
    result.tags.push_back({tag, to_message(grid)});
  result.ooms = stats.ooms;
  result.oom_retries = stats.oom_retries;
  result.segments_created = stats.segments_created;
  result.segments_released = stats.segments_released;
  result.chunks_created = stats.chunks_created;
  result.chunks_reused = stats.chunks_reused;
  result.chunks_released = stats.chunks_released;
  result.sleeps = stats.sleeps;
  result.wakes = stats.wakes;
  result.failed_transitions = stats.failed_transitions;
  result.bytes_backed_up = stats.bytes_backed_up;
  result.bytes_restored = stats.bytes_restored;
  result.bytes_discarded = stats.bytes_discarded;
  result.sleep_seconds = stats.sleep_seconds;
  result.wake_seconds = stats.wake_seconds;
  result.trims = stats.trims;
  result.defragmentations = stats.defragmentations;
  result.bytes_trimmed = stats.bytes_trimmed;
  result.sleep_durations = to_message(stats.sleep_durations);
  result.wake_durations = to_message(stats.wake_durations);
  return result;
}

messages::memory_snapshot to_message(const core::memory_snapshot& snapshot,
                                     std::int32_t device) {
  return {device, snapshot.to_json(-1)};
}

} // namespace gpumem::actors
