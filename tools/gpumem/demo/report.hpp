#pragma once
// The serving day's closing report: a line per step (time, bytes moved, a note),
// printed as a table after the runtime has stopped, then the day's verdict.

#include <cstdint>
#include <string>
#include <vector>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::tool::demo {

inline std::string mib(std::uint64_t bytes) {
  return format_bytes(static_cast<std::size_t>(bytes));
}

struct step_line {
  std::string step;
  double seconds = 0;
  std::uint64_t bytes = 0;  // 0: no bandwidth
  std::string note;
};

/// Prints the table and the verdict; the demo's exit code (1 when a check failed).
int print_report(const std::vector<step_line>& report, double day_seconds, int failures);

} // namespace gpumem::tool::demo
