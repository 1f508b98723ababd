#pragma once
// Statistics in the grid PyTorch's caching allocator made familiar: for each kind of
// bytes, the current and peak values and the running totals of what was added
// (allocated) and taken away (freed).

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "gpumem/core/duration_buckets.hpp"

namespace gpumem::core {

struct stat {
  std::int64_t current = 0;
  std::int64_t peak = 0;
  std::int64_t allocated = 0;  // sum of increases
  std::int64_t freed = 0;      // sum of decreases

  void add(std::int64_t delta) {
    current += delta;
    if (delta > 0)
      allocated += delta;
    else
      freed -= delta;
    if (current > peak)
      peak = current;
  }
  void reset_peak() { peak = current; }
};

/// One tag's bytes, or the engine's in total.
struct stat_grid {
  stat allocated;  // bytes of live regions, asleep or not
  stat requested;  // what callers asked for of those regions
  stat active;     // bytes of live regions resident on the device
  stat reserved;   // physical bytes mapped for the tag (segments)
  stat cached;     // of reserved, wholly free segments kept for reuse
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;

  /// 1 - live bytes / mapped bytes; 0 when nothing is mapped.
  double fragmentation() const {
    if (reserved.current <= 0)
      return 0.0;
    return 1.0 - static_cast<double>(active.current) / static_cast<double>(reserved.current);
  }
};

struct engine_statistics {
  stat_grid total;
  std::map<std::string, stat_grid> tags;
  std::uint64_t ooms = 0;
  std::uint64_t oom_retries = 0;       // allocations that succeeded after freeing caches
  std::uint64_t segments_created = 0;
  std::uint64_t segments_released = 0;
  std::uint64_t chunks_created = 0;
  std::uint64_t chunks_reused = 0;     // cached chunks remapped instead of created
  std::uint64_t chunks_released = 0;
  std::uint64_t sleeps = 0;
  std::uint64_t wakes = 0;
  std::uint64_t failed_transitions = 0;
  std::uint64_t bytes_backed_up = 0;
  std::uint64_t bytes_restored = 0;
  std::uint64_t bytes_discarded = 0;
  double sleep_seconds = 0;
  double wake_seconds = 0;
  duration_buckets sleep_durations;  // their sums and counts: sleep_seconds and sleeps
  duration_buckets wake_durations;
  std::uint64_t trims = 0;
  std::uint64_t defragmentations = 0;
  std::uint64_t bytes_trimmed = 0;
};

} // namespace gpumem::core
