#pragma once
// Byte sizes for people: "2 MiB", "1.50 GiB", "300 B". Exact below 1 KiB.

#include <cstddef>
#include <cstdio>
#include <string>

namespace gpumem {

constexpr std::size_t KiB = std::size_t{1} << 10;
constexpr std::size_t MiB = std::size_t{1} << 20;
constexpr std::size_t GiB = std::size_t{1} << 30;

inline std::string format_bytes(std::size_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0 || value == static_cast<double>(static_cast<std::size_t>(value)))
    std::snprintf(text, sizeof text, "%zu %s", static_cast<std::size_t>(value), units[unit]);
  else
    std::snprintf(text, sizeof text, "%.2f %s", value, units[unit]);
  return text;
}

} // namespace gpumem
