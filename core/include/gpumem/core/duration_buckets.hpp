#pragma once
// Durations counted by bucket, for the histograms of sleep, wake and pressure-response
// seconds. The bounds are fixed and the same everywhere, so that the buckets of every
// device and every process add up bucket by bucket.

#include <array>
#include <cstddef>
#include <cstdint>

namespace gpumem::core {

struct duration_buckets {
  /// Upper bounds in seconds, from a millisecond (a trim) to half a minute (a wake of
  /// many GiB); one more bucket, unbounded, follows the last.
  static constexpr std::array<double, 14> upper_bounds{
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

  /// counts[i]: durations above upper_bounds[i - 1] and at most upper_bounds[i].
  std::array<std::uint64_t, upper_bounds.size() + 1> counts{};

  void record(double seconds) noexcept {
    std::size_t i = 0;
    while (i < upper_bounds.size() && seconds > upper_bounds[i])
      ++i;
    ++counts[i];
  }
};

} // namespace gpumem::core
