#pragma once
// Conversions between the engine's vocabulary (gpumem/core) and the protocol's wire
// types (gpumem/messages). Internal to the actor library.

#include <cstdint>
#include <optional>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "gpumem/core/engine.hpp"
#include "gpumem/messages/errors.hpp"
#include "gpumem/messages/types.hpp"

namespace gpumem::actors {

/// The protocol's error for an engine error: same code (the first fourteen codes
/// coincide), the engine's message as context.
caf::error to_error(const core::engine_error& e);

/// The engine's strategy; nullopt for a value outside the enum.
/// The engine's strategy; none for `configured` (the allocator resolves it) and for
/// values outside the enum.
std::optional<core::strategy> to_core(messages::strategy how) noexcept;

/// The engine's request, or unknown_strategy; strategy::configured becomes
/// `configured`. Size, tag and alignment are left to the engine to check (it answers
/// zero_size, invalid_tag, invalid_alignment, too_large).
caf::expected<core::allocation_request> to_core(const messages::allocation_request& request,
                                                core::strategy configured);

/// The engine's policy (level 0: backing_up(backup_tags), 1, 2), or invalid_config.
caf::expected<core::sleep_policy> to_core(const messages::sleep_policy& policy);

messages::strategy to_message(core::strategy how) noexcept;
messages::device_state to_message(core::engine_state state) noexcept;
messages::transition_kind to_message(core::transition_kind kind) noexcept;

messages::region_handle to_handle(const core::region_info& region, std::int32_t device);
messages::transition_report to_message(const core::transition_report& report,
                                       std::int32_t device);
messages::trim_report to_message(const core::trim_report& report, std::int32_t device);
messages::defragment_report to_message(const core::defragment_report& report,
                                       std::int32_t device);
messages::stat to_message(const core::stat& s) noexcept;
messages::stat_grid to_message(const core::stat_grid& grid) noexcept;
messages::duration_buckets to_message(const core::duration_buckets& buckets);
messages::statistics to_message(const core::engine_statistics& stats, std::int32_t device);
/// The snapshot as its documented JSON (one line).
messages::memory_snapshot to_message(const core::memory_snapshot& snapshot,
                                     std::int32_t device);

} // namespace gpumem::actors
