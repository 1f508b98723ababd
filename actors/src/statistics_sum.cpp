#include "statistics_sum.hpp"

#include <algorithm>
#include <string>

namespace gpumem::actors {

using namespace messages;

namespace {

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

} // namespace

void add_statistics(statistics& sum, const statistics& x) {
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

} // namespace gpumem::actors
