// [gpumem.pressure]: the pressure monitor's period, thresholds and responses.

#include <chrono>

#include "config_reader.hpp"

namespace gpumem::actors::detail {

void read_pressure_section(const reader& in, runtime_config& config) {
  const runtime_config defaults;
  auto& p = config.pressure;
  const auto& dp = defaults.pressure;
  p.period = std::chrono::milliseconds{
    in.integer("gpumem.pressure.period-ms", dp.period.count())};
  p.warning = in.fraction("gpumem.pressure.warning", dp.warning);
  p.critical = in.fraction("gpumem.pressure.critical", dp.critical);
  p.hysteresis = in.fraction("gpumem.pressure.hysteresis", dp.hysteresis);
  auto figure = [](double v) { return render_number(v); };
  if (!(p.warning > 0 && p.warning < 1))
    in.fail("gpumem.pressure.warning",
            "expected a fraction between 0 and 1, got " + figure(p.warning));
  if (!(p.critical > 0 && p.critical <= 1))
    in.fail("gpumem.pressure.critical",
            "expected a fraction above 0, at most 1, got " + figure(p.critical));
  if (!(p.warning < p.critical))
    in.fail("gpumem.pressure.critical", "expected a fraction above gpumem.pressure.warning "
                                          + figure(p.warning) + ", got " + figure(p.critical));
  if (!(p.hysteresis >= 0 && p.hysteresis < p.warning))
    in.fail("gpumem.pressure.hysteresis",
            "expected a fraction from 0 to below gpumem.pressure.warning " + figure(p.warning)
              + ", got " + figure(p.hysteresis));
  p.trim_at_warning = in.boolean("gpumem.pressure.trim-at-warning", dp.trim_at_warning);
  p.offload_at_critical = in.boolean("gpumem.pressure.offload-at-critical", dp.offload_at_critical);
  p.offloadable_tags = in.text_list("gpumem.pressure.offloadable-tags", dp.offloadable_tags);
  for (const auto& tag : p.offloadable_tags)
    if (tag.empty())
      in.fail("gpumem.pressure.offloadable-tags", "expected non-empty tag names, got an empty one");
  p.wake_on_normal = in.boolean("gpumem.pressure.wake-on-normal", dp.wake_on_normal);
}

} // namespace gpumem::actors::detail
