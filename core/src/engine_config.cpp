#include "gpumem/core/engine_config.hpp"

namespace gpumem::core {

namespace {

engine_error bad(const std::string& what) { return {engine_errc::invalid_config, what}; }

bool power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

} // namespace

engine_result<void> engine_config::validate(const cuda::device_properties& props) const {
  auto g = props.granularity_minimum;
  if (g == 0)
    return bad("the device reports no allocation granularity");
  if (small_chunk == 0 || small_chunk % g != 0)
    return bad("small_chunk " + format_bytes(small_chunk) + " must be a multiple of the granularity "
               + format_bytes(g));
  if (large_chunk < small_chunk || large_chunk % small_chunk != 0)
    return bad("large_chunk " + format_bytes(large_chunk) + " must be a multiple of small_chunk "
               + format_bytes(small_chunk));
  if (small_segment < small_chunk || small_segment % small_chunk != 0)
    return bad("small_segment " + format_bytes(small_segment) + " must be a multiple of small_chunk "
               + format_bytes(small_chunk));
  if (small_threshold == 0 || small_threshold > small_segment)
    return bad("small_threshold " + format_bytes(small_threshold)
               + " must be between 1 byte and small_segment " + format_bytes(small_segment));
  if (!power_of_two(default_alignment) || default_alignment < 256 || default_alignment > g)
    return bad("default_alignment " + std::to_string(default_alignment)
               + " must be a power of two from 256 to the granularity");
  if (arena_size != 0 && (arena_size % g != 0 || arena_size < small_segment))
    return bad("arena_size " + format_bytes(arena_size)
               + " must be a multiple of the granularity and hold at least one segment");
  if (cache_decay.count() < 0)
    return bad("cache_decay must not be negative");
  if (copy_piece == 0)
    return bad("copy_piece must be non-zero");
  if (copies_in_flight < 1 || copies_in_flight > 1024)
    return bad("copies_in_flight must be 1 to 1024, not " + std::to_string(copies_in_flight));
  if (device < 0)
    return bad("device must be a device ordinal, not " + std::to_string(device));
  return {};
}

} // namespace gpumem::core
