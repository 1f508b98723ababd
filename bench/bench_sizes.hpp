#pragma once
// The allocation sizes every allocate + free benchmark shares: one fixed random
// sequence of 256 B .. 16 KiB, so that the actor, client and engine figures compare.

#include <cstdint>
#include <random>
#include <vector>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::bench {

inline const std::vector<std::uint64_t>& bench_sizes() {
  static const std::vector<std::uint64_t> sizes = [] {
    std::vector<std::uint64_t> s(4096);
    std::mt19937_64 random(20261126);
    std::uniform_int_distribution<std::uint64_t> size(256, 16 * KiB);
    for (auto& x : s)
      x = size(random);
    return s;
  }();
  return sizes;
}

} // namespace gpumem::bench
