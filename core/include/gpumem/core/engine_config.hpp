#pragma once
// How one engine lays out its device's memory. Every size is rounded to the device's
// granularity where it must be; validate() says what is out of range.

#include <cstddef>
#include <string>
#include <vector>

#include "gpumem/core/engine_error.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core {

struct engine_config {
  int device = 0;
  /// Virtual address space reserved up front; 0: twice the device's memory. Every
  /// address the engine hands out lies in it, and survives sleep.
  std::size_t arena_size = 0;
  /// Physical chunk sizes: segments are built of large chunks, then small ones for
  /// the remainder, so any cached chunk can serve any segment.
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
  /// Wholly free segments kept mapped for reuse; beyond this they go back to the device.
  std::size_t cache_limit = 256 * MiB;
  /// Wake admission keeps this much device memory free beyond what it maps.
  std::size_t wake_margin = 0;
  /// Sleep and wake copy in pieces of this size, this many in flight.
  std::size_t copy_piece = 8 * MiB;
  int copies_in_flight = 4;

  /// Checks the fields against the device; rounds nothing.
  engine_result<void> validate(const cuda::device_properties& props) const;
};

} // namespace gpumem::core
