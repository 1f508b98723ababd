#pragma once
// The device allocator: one actor per device, owning that device's engine and
// serializing every operation on it (messages::device_allocator_actor).
//
// Its states are behaviors it becomes (docs/state-machine.md draws them):
//   awake       serves everything;
//   transition  a sleep or wake runs step by step (engine begin_sleep/begin_wake, then
//               advance() on a private poll message every poll_interval): stats,
//               snapshot, info and status are answered; every other request is queued
//               and replayed in arrival order when the transition ends (while_asleep =
//               queue), or fails at once with device_asleep (fail; a sleep or wake
//               request fails with transition_in_progress);
//   prepared    phase one of a collective transition is done (prepare_sleep: every
//               backup taken, nothing unmapped or discarded; prepare_wake: mapped and
//               restored, host backups kept): requests wait or fail as in `transition`
//               until commit or abort of its transaction id, or until its hold runs out
//               (then it aborts on its own: the balancer may have died);
//   asleep      at least one tag sleeps: requests to awake tags are served; those the
//               engine refuses with tag_asleep wait for a wake that makes their tag
//               awake (queue) or are answered device_asleep naming the tag (fail).
// The requester of a sleep or wake gets its report when the transition finishes.
// An abort loses nothing: a prepared sleep drops its backups (every tag stays awake,
// its bytes in place), a prepared wake unmaps what it mapped (every tag it named stays
// asleep with its backups); tags it did not name are never touched.

// Pressure events for its own device (pressure_response; events for another device are
// ignored), unless a transition runs:
//   warning     trims the cache (trim_at_warning);
//   critical    defragments; then (offload_at_critical) offloads awake offloadable tags
//               with live regions to host: a sleep that backs up their bytes, run as
//               any transition, least recently used tag first (a tag is as recent as
//               its newest region), as many as bring use below critical - hysteresis
//               (all if none do). Their requests wait or fail as for a client's sleep;
//   normal      (wake_on_normal) wakes what pressure offloaded, never a client's sleep;
//               a wake refused or failed keeps them offloaded and is tried again after
//               wake_retry_initial, doubling up to wake_retry_max, while pressure stays
//               normal (device_status::offload_wait_reason says why they wait); one
//               that comes due during a transition starts when it ends.
// A client's wake of offloaded tags takes them off the offloaded list. Each response
// logs the bytes released and the time from the level change (the event's system-clock
// stamp; the event's arrival where the stamp is missing or ahead of this clock) to the
// release; device_status keeps the last and slowest times and the offload counters.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "gpumem/actors/pressure_monitor.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::actors {

/// What an allocation for a sleeping tag does: wait for the wake, or fail at once
/// with device_asleep (naming the sleeping tag or the transition under way).
enum class asleep_behaviour { queue, fail };
inline constexpr std::array<std::pair<std::string_view, asleep_behaviour>, 2> asleep_behaviour_names{
  {{"queue", asleep_behaviour::queue}, {"fail", asleep_behaviour::fail}}};
/// "queue", "fail".
const char* to_string(asleep_behaviour behaviour) noexcept;

/// How the allocator answers pressure events (the thresholds, the monitor's, say how
/// far to offload; the runtime gives it the monitor's).
struct pressure_response {
  bool trim_at_warning = true;       // release cached segments at warning
  bool offload_at_critical = true;   // defragment, then offload offloadable tags
  std::vector<std::string> offloadable_tags{"kv_cache"};
  bool wake_on_normal = true;        // wake offloaded tags once back to normal
  // Offload until use falls below critical - hysteresis (fractions of the total).
  double critical = pressure_settings{}.critical;
  double hysteresis = pressure_settings{}.hysteresis;
  /// A wake of offloaded tags that was refused or failed at normal pressure is tried
  /// again after this, doubling each time up to wake_retry_max.
  std::chrono::milliseconds wake_retry_initial{100};
  std::chrono::milliseconds wake_retry_max{5000};
};

struct device_allocator_options {
  /// What requests do while a transition runs or their tag sleeps.
  asleep_behaviour while_asleep = asleep_behaviour::queue;
  /// Between two advance() calls of a transition; zero polls with a plain send.
  std::chrono::microseconds poll_interval{1000};
  /// Where info() reads the device's name, capacity, granularity and free memory;
  /// nullptr: those fields stay empty or zero. Not owned; must outlive the actor
  /// (as it must outlive the engine anyway).
  cuda::device_backend* backend = nullptr;
  pressure_response pressure;
  /// What an allocation asking for strategy::configured gets: its tag's entry in
  /// tag_strategies, else default_strategy.
  core::strategy default_strategy = core::strategy::pooled;
  std::map<std::string, core::strategy, std::less<>> tag_strategies;

  core::strategy strategy_for(std::string_view tag) const {
    auto i = tag_strategies.find(tag);
    return i == tag_strategies.end() ? default_strategy : i->second;
  }
};

/// Which behavior the actor has.
enum class allocator_phase { awake, transition, prepared, asleep };
const char* to_string(allocator_phase phase) noexcept;

/// Who started the transition under way: a client's request (answered with its
/// report), the pressure response (an offload or the wake of offloaded tags), or a
/// collective transition in two phases (prepare, then commit or abort).
enum class transition_origin { client, pressure, collective };

/// What the pressure response keeps between events.
struct pressure_response_state {
  /// Asleep because pressure offloaded them (never a client's sleep), in offload order.
  std::vector<std::string> offloaded;
  /// Normal arrived during a transition: wake the offloaded tags when it ends.
  bool wake_due = false;
  /// The last wake of offloaded tags that was refused or failed (empty: none), the
  /// back-off before the next try, and the timer's generation (older ones are stale).
  std::string wake_failure;
  std::chrono::milliseconds retry_delay{0};
  std::uint64_t retry_generation = 0;
  std::uint64_t wake_retries = 0;
  // The offload under way: when its level change happened (system clock, ns), what the
  // defragment before it released, and how long that took.
  std::int64_t started_ns = 0;
  std::uint64_t defragmented_bytes = 0;
  double defragmented_ms = 0;
  // For device_status.
  std::uint64_t responses = 0;
  double last_ms = 0;
  double max_ms = 0;
  double total_ms = 0;
  core::duration_buckets durations;
  std::uint64_t last_bytes = 0;
  std::uint64_t offloads = 0;
  std::uint64_t offload_wakes = 0;
  std::uint64_t bytes_offloaded = 0;
};

struct device_allocator_state {
  static inline const char* name = "gpumem.device_allocator";

  /// A request that waits: `run` serves it (or parks it again), `fail` answers an error.
  struct pending {
    std::function<void()> run;
    std::function<void(caf::error)> fail;
    std::uint64_t transaction = 0;  // a queued prepare: its id (an abort drops it)
  };

  std::unique_ptr<core::engine> engine;
  std::int32_t device = 0;
  device_allocator_options options;
  allocator_phase phase = allocator_phase::awake;
  messages::pressure_level pressure = messages::pressure_level::normal;

  // The transition under way.
  core::transition_kind transition = core::transition_kind::sleep;
  transition_origin origin = transition_origin::client;
  caf::typed_response_promise<messages::transition_report> transition_promise;
  std::uint64_t polls = 0;
  /// The collective transition under way or prepared (origin collective; 0: none).
  std::uint64_t transaction = 0;
  std::uint64_t hold_ms = 0;
  /// The last collective prepare that found nothing to do here (commit: an empty
  /// report; abort: ok), and its kind.
  std::uint64_t idle_transaction = 0;
  core::transition_kind idle_kind = core::transition_kind::sleep;

  /// Arrived during a transition; replayed in order when it ends.
  std::deque<pending> queued;
  /// Refused with tag_asleep; retried after each wake.
  std::deque<pending> parked;

  pressure_response_state response;

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
