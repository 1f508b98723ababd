#pragma once
// A device allocator's counters and status as the day reads them, to report what it
// did under pressure and to wait until it has done it.

#include <chrono>
#include <cstdint>
#include <optional>

#include "checks.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::tool::demo {

struct allocator_counters {
  std::uint64_t trims = 0, defragmentations = 0, bytes_trimmed = 0, reserved = 0, cached = 0;
};

/// The counters of `device`'s allocator (zeros, and a failure, if it does not answer).
allocator_counters counters_of(demo_context& cx, int device);

std::optional<messages::device_status> status_of(demo_context& cx, int device);

/// Polls `device`'s status until `done` holds of it; nullopt on timeout.
template <class Done>
std::optional<messages::device_status> wait_status(demo_context& cx, int device,
                                                   std::chrono::milliseconds limit, Done done) {
  return wait_until(limit, [&] { return status_of(cx, device); }, done);
}

} // namespace gpumem::tool::demo
