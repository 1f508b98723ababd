#include <stdexcept>

#include "gpumem/core/engine_error.hpp"
#include "gpumem/core/engine_types.hpp"

namespace gpumem::core {

const char* to_string(engine_errc code) noexcept {
  switch (code) {
    case engine_errc::zero_size: return "zero_size";
    case engine_errc::too_large: return "too_large";
    case engine_errc::invalid_alignment: return "invalid_alignment";
    case engine_errc::unknown_strategy: return "unknown_strategy";
    case engine_errc::invalid_tag: return "invalid_tag";
    case engine_errc::unknown_region: return "unknown_region";
    case engine_errc::double_free: return "double_free";
    case engine_errc::out_of_memory: return "out_of_memory";
    case engine_errc::tag_asleep: return "tag_asleep";
    case engine_errc::transition_in_progress: return "transition_in_progress";
    case engine_errc::invalid_transition: return "invalid_transition";
    case engine_errc::insufficient_memory: return "insufficient_memory";
    case engine_errc::invalid_config: return "invalid_config";
    case engine_errc::device_failure: return "device_failure";
  }
  return "unknown_error";
}

const char* to_string(strategy s) noexcept {
  switch (s) {
    case strategy::pooled: return "pooled";
    case strategy::first_fit: return "first_fit";
    case strategy::dedicated: return "dedicated";
  }
  return "pooled";
}

engine_result<strategy> parse_strategy(std::string_view name) {
  for (auto s : {strategy::pooled, strategy::first_fit, strategy::dedicated})
    if (name == to_string(s))
      return s;
  return engine_error{engine_errc::unknown_strategy,
                      "unknown strategy '" + std::string(name)
                        + "' (expected pooled, first_fit or dedicated)"};
}

const char* to_string(engine_state s) noexcept {
  switch (s) {
    case engine_state::awake: return "awake";
    case engine_state::falling_asleep: return "falling_asleep";
    case engine_state::asleep: return "asleep";
    case engine_state::waking: return "waking";
  }
  return "awake";
}

const char* to_string(region_state s) noexcept {
  switch (s) {
    case region_state::resident: return "resident";
    case region_state::backed_up: return "backed_up";
    case region_state::discarded: return "discarded";
  }
  return "resident";
}

sleep_policy sleep_policy::level(int level) {
  if (level == 1)
    return sleep_policy{{"weights"}, {}};
  if (level == 2)
    return sleep_policy{{}, {}};
  throw std::invalid_argument("sleep level must be 1 (back up weights) or 2 (discard all), not "
                              + std::to_string(level));
}

sleep_policy sleep_policy::backing_up(std::vector<std::string> tags) {
  return sleep_policy{std::move(tags), {}};
}

double transition_report::bandwidth() const {
  auto bytes = static_cast<double>(bytes_backed_up + bytes_restored);
  return seconds > 0 ? bytes / seconds : 0.0;
}

} // namespace gpumem::core
