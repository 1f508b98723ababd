#pragma once
// How one engine lays out its device's memory. Every size is rounded to the device's
// granularity where it must be; validate() says what is out of range.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "gpumem/core/engine_error.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core {

struct engine_config {
  int device = 0;
  /// Virtual address space reserved up front; 0: eight times the device's memory,
  /// since cached memory is reused where it lies and live segments end up spread
  /// over the range (address space is cheap; running out of it in pieces is not). Every
  /// address the engine hands out lies in it, and survives sleep.
  std::size_t arena_size = 0;
  /// Physical chunk sizes: segments of packed tags are built of large chunks, then
  /// small ones for the remainder; other tags' of small ones only, so that what they
  /// leave cached serves a request of any size exactly.
  std::size_t small_chunk = 2 * MiB;
  std::size_t large_chunk = 32 * MiB;
  /// Requests up to this size share small segments (kept dense, apart from the large
  /// ones, so large segments empty out and can be released).
  std::size_t small_threshold = 1 * MiB;
  std::size_t small_segment = 2 * MiB;
  std::size_t default_alignment = 256;
  /// Tags whose large allocations live long (a model's weights): their newest segment
  /// grows in place, so neighbouring tensors share granules instead of each being
  /// rounded up. Short-lived tags keep one segment per allocation, so that freed
  /// memory empties whole segments that can go back to the device.
  std::vector<std::string> packed_tags{"weights"};
  /// Wholly free segments stay mapped for reuse (the cache) until they have been idle
  /// this long, then go back to the device, so that a serving process's next burst
  /// finds its memory instead of creating it again. 0: back at once. Pressure gives
  /// the cache back sooner (trim()), and running out of memory does.
  std::chrono::milliseconds cache_decay{60'000};
  /// At most this many bytes stay cached; beyond it the oldest go back at once.
  /// 0: no limit, the decay alone decides.
  std::size_t cache_limit = 0;
  /// Wake admission keeps this much device memory free beyond what it maps.
  std::size_t wake_margin = 0;
  /// Sleep and wake copy in pieces of this size, this many in flight.
  std::size_t copy_piece = 8 * MiB;
  int copies_in_flight = 4;

  /// Checks the fields against the device; rounds nothing.
  engine_result<void> validate(const cuda::device_properties& props) const;
};

} // namespace gpumem::core
