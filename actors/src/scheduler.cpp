#include "gpumem/actors/scheduler.hpp"

#include <caf/timespan.hpp>

namespace gpumem::actors {

void use_prompt_wakeups(caf::actor_system_config& cfg) {
  // No sleeps between the moderate polls: an idle worker spins briefly, then parks
  // where an enqueue from outside the system wakes it.
  cfg.set("work-stealing.moderate-sleep-duration", caf::timespan{0});
}

} // namespace gpumem::actors
