#pragma once
// How the actor system's workers wait for work, tuned for requests from outside it.

#include <caf/actor_system_config.hpp>

namespace gpumem::actors {

/// Idle CAF 0.17 workers poll 500 times with a 50 us sleep before they park on a
/// condition variable, and only a parked worker is woken by a message from outside the
/// system. A client's request (blocking, Asio, C ABI, HTTP) arrives from outside and so
/// waits out those sleeps: an allocate and free from one thread took 4 to 6 times as
/// long on a 2-core machine as when idle workers park at once
/// (BM_BlockingClientAllocFreeCafPolling against BM_BlockingClientAllocFree). This
/// sets work-stealing.moderate-sleep-duration to 0; a later --caf.work-stealing.*
/// option still overrides it. gpumem_config applies it; a host that builds its own
/// configuration calls it before creating the system.
void use_prompt_wakeups(caf::actor_system_config& cfg);

} // namespace gpumem::actors
