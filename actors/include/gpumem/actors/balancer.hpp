#pragma once
// The balancer: routes requests over the device allocators it was given
// (messages::balancer_actor).
//
// Routing of an allocation:
//   device_hint >= 0   that device, or unknown_device when it is not routed to;
//   otherwise          the routing policy over the devices:
//     least-loaded     the most free physical memory after pending work: the free bytes
//                      the device last reported, minus what was allocated there since,
//                      minus the bytes of requests routed to it and not yet answered;
//     round-robin      the next device in device order;
//     tag-affinity     the device the tag first went to (chosen least-loaded); a tag
//                      whose device left is pinned again.
//   A device whose last pressure level is critical is skipped while another device
//   has room (estimated free bytes >= the request's size); when none has, every
//   device is a candidate. No device at all: no_device_available.
//   An allocation without a hint that a device refuses with out_of_memory is tried
//   on the next device the policy picks among those not tried yet; the answer is the
//   last device's refusal when every device refused.
// The free-memory figures come from each device's info: at add_device, every
// refresh_interval, after sleep_all / wake_all and after an out_of_memory, and from
// pressure events. Allocations lower the estimate at once; nothing asks a device
// for figures on the allocation path.
// Deallocate and touch go to handle.device (unknown_device when it is not routed to).
// A batch is routed request by request, then sent as one batch per device; each
// device allocates all of its part or none. If a part fails, the other parts are
// freed before the answer, which is the failing part's code with a message naming
// the device, its requests and the cause. A batch free groups the handles by device
// the same way (an unknown device refuses the whole batch before anything is freed).
// sleep_all / wake_all go to every device at once, in two phases (a transaction id
// each; docs/state-machine.md): every device prepares (prepare_sleep takes the
// backups and unmaps nothing; prepare_wake maps and restores, keeping the backups;
// a device with nothing to move answers an empty report), then, when all have
// prepared, every device commits; when one fails or misses its deadline, every
// device aborts and loses nothing. The answer of a failure is the FAILING DEVICE'S
// OWN CODE, so a client can tell device_failure from insufficient_memory; the message
// names the device and the cause, and says every device is as it was only when each
// confirmed its abort (a device the abort did not reach aborts on its own when its
// hold, twice transition_timeout, runs out).
// stats gathers every device's statistics and sums them (device -1); info and status
// ask every device afresh.
//
// Pressure: the typed interface has no pressure handler, but the balancer's default
// handler accepts pressure_event, so actor_cast<pressure_subscriber_actor>(balancer)
// can subscribe to a pressure monitor. Levels also come from each device's status
// (device_status::pressure) when a device is added, on status, and on refresh ticks.
//
// Timeouts: every downstream request has a deadline (request_timeout; sleeps and
// wakes transition_timeout), kept in the balancer's own deadline tables rather than
// CAF's clock (see deadline_table.hpp); a sweep every tenth of the timeout answers
// the overdue ones with gpumem_errc::timeout naming the device. A reply that comes
// after its deadline is undone: a late allocation is freed, a late prepare aborted.
// Devices are monitored: one that terminates is dropped.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "gpumem/actors/deadline_table.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::actors {

/// How the balancer picks a device for a request that names none.
enum class routing_policy { least_loaded, round_robin, tag_affinity };
inline constexpr std::array<std::pair<std::string_view, routing_policy>, 3> routing_policy_names{
  {{"least-loaded", routing_policy::least_loaded},
   {"round-robin", routing_policy::round_robin},
   {"tag-affinity", routing_policy::tag_affinity}}};
/// "least-loaded", "round-robin", "tag-affinity".
const char* to_string(routing_policy policy) noexcept;

struct balancer_options {
  routing_policy routing = routing_policy::least_loaded;
  /// Every request to a device allocator but sleeps and wakes; never infinite (a
  /// request to a dead remote proxy otherwise hangs).
  std::chrono::milliseconds request_timeout{5000};
  /// Sleeps and wakes, which copy whole tags between device and host.
  std::chrono::milliseconds transition_timeout{300000};
  /// Between two refreshes of every device's info and status; zero: none (figures
  /// then come from add_device, sleep_all / wake_all, out_of_memory and pressure).
  std::chrono::milliseconds refresh_interval{50};
};

struct balancer_state {
  static inline const char* name = "gpumem.balancer";

  struct device_entry {
    messages::device_allocator_actor handle;
    messages::device_info info;
    /// Bytes of allocations routed here and not yet answered.
    std::uint64_t pending_bytes = 0;
  };

  balancer_options options;
  /// Every device routed to, by device number (device order).
  std::map<std::int32_t, device_entry> devices;
  /// The last pressure level heard of per device number (from events or statuses).
  std::map<std::int32_t, messages::pressure_level> pressure;
  /// tag-affinity: the device each tag went to first.
  std::map<std::string, std::int32_t, std::less<>> affinity;
  /// The id of the last collective transition (sleep_all / wake_all).
  std::uint64_t next_transaction = 0;
  /// round-robin: the position in device order to try next.
  std::size_t next_round_robin = 0;
  std::uint64_t allocations_routed = 0;
  std::uint64_t allocations_rejected = 0;  // no device, or the device refused
  std::uint64_t allocations_retried = 0;   // sent on after an out_of_memory

  /// Deadlines of the requests in flight: requests, and sleeps and wakes.
  deadline_table requests;
  deadline_table transitions;
  bool sweep_armed = false;
  /// Set while the state is destroyed: what is still in flight fails as such.
  bool terminating = false;

  balancer_state() = default;
  balancer_state(const balancer_state&) = delete;
  balancer_state& operator=(const balancer_state&) = delete;
  /// Answers every request still waiting for a device with an error: a client that
  /// relies on the balancer's deadlines must not wait forever for a dead balancer.
  ~balancer_state();
};

using balancer_pointer = messages::balancer_actor::stateful_pointer<balancer_state>;

/// The actor's function: spawn with sys.spawn(balancer, options), then add_device.
messages::balancer_actor::behavior_type balancer(balancer_pointer self,
                                                 balancer_options options = {});

} // namespace gpumem::actors
