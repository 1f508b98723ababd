#pragma once
// How the demos time their steps and report bandwidth.

#include <chrono>
#include <cstdint>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::tool {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

/// Bytes per second in GiB/s; 0 for a step that took no measurable time.
inline double gib_per_second(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / static_cast<double>(GiB) : 0.0;
}

} // namespace gpumem::tool
