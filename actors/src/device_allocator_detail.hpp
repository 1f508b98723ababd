#pragma once
// What the device allocator's two sources share (internal to the actor library):
// device_allocator.cpp runs the behaviors and the transitions, pressure_response.cpp
// answers pressure events and may start transitions of its own.

#include <string>
#include <vector>

#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/messages/types.hpp"

namespace gpumem::actors::detail {

// -- device_allocator.cpp ------------------------------------------------------------

/// Enters the transition the engine has just begun (begin_sleep or begin_wake
/// succeeded): becomes `transition` and schedules the first advance. A client's
/// promise must already be in state.transition_promise.
void enter_transition(device_allocator_pointer self, core::transition_kind kind,
                      transition_origin origin);

// -- pressure_response.cpp -----------------------------------------------------------

/// A pressure event arrived (one for another device is ignored).
void on_pressure(device_allocator_pointer self, const messages::pressure_event& event);

/// A transition the pressure response started has ended with `result`.
void pressure_transition_done(device_allocator_pointer self, core::transition_kind kind,
                              const core::engine_result<core::transition_report>& result);

/// A client's wake woke `tags`: those are no longer the pressure response's to wake.
void client_woke(device_allocator_state& st, const std::vector<std::string>& tags);

/// The back-off timer of a wake of offloaded tags fired (stale generations are ignored).
void on_wake_retry(device_allocator_pointer self, std::uint64_t generation);

/// No transition runs any more and the queue is replayed: starts a wake that came due
/// meanwhile.
void after_transition(device_allocator_pointer self);

/// Fills the pressure response's fields of a status.
void add_response_status(const device_allocator_state& st, messages::device_status& status);

} // namespace gpumem::actors::detail
