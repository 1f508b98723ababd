#include "report.hpp"

#include <spdlog/spdlog.h>

#include "../step_timing.hpp"

namespace gpumem::tool::demo {

int print_report(const std::vector<step_line>& report, double day_seconds, int failures) {
  spdlog::info("report ({:.2f} s in all)", day_seconds);
  for (const auto& r : report) {
    if (r.bytes > 0)
      spdlog::info("  {:<26} {:9.1f} ms {:>10} {:7.2f} GiB/s  {}", r.step, r.seconds * 1e3, mib(r.bytes),
                   gib_per_second(r.bytes, r.seconds), r.note);
    else
      spdlog::info("  {:<26} {:9.1f} ms {:>10} {:>13}  {}", r.step, r.seconds * 1e3, "", "", r.note);
  }
  if (failures > 0) {
    spdlog::error("serving day FAILED: {} check(s) failed", failures);
    return 1;
  }
  spdlog::info("serving day passed: weights intact at their addresses after sleep and wake");
  return 0;
}

} // namespace gpumem::tool::demo
