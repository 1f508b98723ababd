#pragma once
// The device allocator: one actor per device, owning that device's engine and
// serializing every operation on it (messages::device_allocator_actor).
//
// Its states are behaviors it becomes:
//   awake       serves everything;
//   transition  a sleep or wake runs step by step (engine begin_sleep/begin_wake, then
//               advance() on a private poll message every poll_interval): stats,
//               snapshot, info and status are answered; every other request is queued
//               and replayed in arrival order when the transition ends (while_asleep =
//               queue), or fails at once with transition_in_progress (fail);
//   asleep      at least one tag sleeps: requests to awake tags are served; those the
//               engine refuses with tag_asleep wait for a wake that makes their tag
//               awake (queue) or are answered tag_asleep (fail).
// The requester of a sleep or wake gets its report when the transition finishes.
// Pressure events: warning trims the cache, critical defragments.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include <caf/error.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::actors {

struct device_allocator_options {
  /// What requests do while a transition runs or their tag sleeps.
  asleep_behaviour while_asleep = asleep_behaviour::queue;
  /// Between two advance() calls of a transition; zero polls with a plain send.
  std::chrono::microseconds poll_interval{1000};
  /// Where info() reads the device's name, capacity, granularity and free memory;
  /// nullptr: those fields stay empty or zero. Not owned; must outlive the actor
  /// (as it must outlive the engine anyway).
  cuda::device_backend* backend = nullptr;
};

/// Which behavior the actor has.
enum class allocator_phase { awake, transition, asleep };
const char* to_string(allocator_phase phase) noexcept;

struct device_allocator_state {
  static inline const char* name = "gpumem.device_allocator";

  /// A request that waits: `run` serves it (or parks it again), `fail` answers an error.
  struct pending {
    std::function<void()> run;
    std::function<void(caf::error)> fail;
  };

  std::unique_ptr<core::engine> engine;
  std::int32_t device = 0;
  device_allocator_options options;
  allocator_phase phase = allocator_phase::awake;
  messages::pressure_level pressure = messages::pressure_level::normal;

  // The transition under way.
  core::transition_kind transition = core::transition_kind::sleep;
  caf::typed_response_promise<messages::transition_report> transition_promise;
  std::uint64_t polls = 0;

  /// Arrived during a transition; replayed in order when it ends.
  std::deque<pending> queued;
  /// Refused with tag_asleep; retried after each wake.
  std::deque<pending> parked;

  device_allocator_state() = default;
  device_allocator_state(const device_allocator_state&) = delete;
  device_allocator_state& operator=(const device_allocator_state&) = delete;
  /// Answers every waiting request with an error (the actor is going away).
  ~device_allocator_state();
};

using device_allocator_pointer =
  messages::device_allocator_actor::stateful_pointer<device_allocator_state>;

/// The actor's function: spawn with sys.spawn(device_allocator, std::move(engine),
/// device, options). `engine` must not be null and must be awake.
messages::device_allocator_actor::behavior_type
device_allocator(device_allocator_pointer self, std::unique_ptr<core::engine> engine,
                 std::int32_t device, device_allocator_options options = {});

} // namespace gpumem::actors
