#pragma once
// Byte patterns and checksums that make a lost or moved byte visible.

#include <cstddef>
#include <cstdint>

namespace gpumem::test {

/// Fills `size` bytes with a pattern that depends on `seed` and on each position.
inline void fill_pattern(std::byte* data, std::size_t size, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = static_cast<std::byte>(x);
  }
}

/// FNV-1a over the bytes.
inline std::uint64_t checksum(const std::byte* data, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= static_cast<std::uint64_t>(data[i]);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

} // namespace gpumem::test
