#pragma once
// Every actor interface of the runtime, in one place: a client includes this header
// (or gpumem/messages/all.hpp) and nothing else. Requests that fail answer a caf::error
// of category "gpumem" (errors.hpp); remote requests need finite timeouts.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "gpumem/messages/atoms.hpp"
#include "gpumem/messages/errors.hpp"
#include "gpumem/messages/types.hpp"

namespace gpumem::messages {

/// Anything that wants to hear of pressure changes (device allocators, balancers,
/// clients). The pressure monitor sends; nobody answers.
using pressure_subscriber_actor = caf::typed_actor<
  // A device's pressure level changed.
  caf::reacts_to<pressure_event>>;

/// One device: owns its engine, serializes every operation on it.
using device_allocator_actor = caf::typed_actor<
  // Allocates one region (device_hint is ignored: this is the device).
  caf::replies_to<allocate_atom, allocation_request>::with<region_handle>,
  // Frees the region with this id.
  caf::replies_to<deallocate_atom, std::uint64_t>::with<ok_atom>,
  // Frees the region starting at this device address.
  caf::replies_to<deallocate_at_atom, std::uint64_t>::with<ok_atom>,
  // Marks the region with this id used now (LRU order for offloading).
  caf::replies_to<touch_atom, std::uint64_t>::with<ok_atom>,
  // Allocates every request or none (what was allocated is freed on failure).
  caf::replies_to<batch_allocate_atom, batch_allocation_request>::with<batch_allocation_response>,
  // Frees every region of the batch (all on this device) or, if one is not live, none.
  caf::replies_to<batch_deallocate_atom, batch_deallocation_request>::with<ok_atom>,
  // Puts tags to sleep: backs up what the policy keeps, releases physical memory.
  caf::replies_to<sleep_atom, sleep_policy>::with<transition_report>,
  // Wakes these tags in order (empty: every sleeping tag, weights first); all or nothing.
  caf::replies_to<wake_atom, std::vector<std::string>>::with<transition_report>,
  // Collective sleep, phase one (transaction id, hold in ms): takes every backup the
  // policy keeps while every region stays mapped with its bytes; answers the backups
  // taken, or an empty report where nothing awake is named. Held until commit or
  // abort of that id, aborted on its own when the hold runs out.
  caf::replies_to<prepare_sleep_atom, sleep_policy, std::uint64_t,
                  std::uint64_t>::with<transition_report>,
  // Collective wake, phase one (transaction id, hold in ms): maps and restores the
  // sleeping tags named (empty: all) keeping their host backups; nothing asleep here
  // is an empty report, not an error.
  caf::replies_to<prepare_wake_atom, std::vector<std::string>, std::uint64_t,
                  std::uint64_t>::with<transition_report>,
  // Phase two: finishes the prepared transaction (sleep: releases and discards; wake:
  // drops the backups); answers its whole report.
  caf::replies_to<commit_atom, std::uint64_t>::with<transition_report>,
  // Abandons the transaction, prepared, under way or queued, losing nothing; an id
  // not held here is already as it was (ok).
  caf::replies_to<abort_atom, std::uint64_t>::with<ok_atom>,
  // Returns wholly free cached segments to the device.
  caf::replies_to<trim_atom>::with<trim_report>,
  // Trims, and releases free tails of live segments; moves nothing.
  caf::replies_to<defragment_atom>::with<defragment_report>,
  // The engine's statistics.
  caf::replies_to<stats_atom>::with<statistics>,
  // The engine's memory snapshot (JSON).
  caf::replies_to<snapshot_atom>::with<memory_snapshot>,
  // The device: name, backend, capacity, free bytes, state.
  caf::replies_to<info_atom>::with<device_info>,
  // The allocator's state of the moment.
  caf::replies_to<status_atom>::with<device_status>>
  // Reacts to its device's pressure: trims at warning; defragments, then offloads LRU
  // offloadable tags to host at critical; wakes them back at normal.
  ::extend_with<pressure_subscriber_actor>;

/// Routes requests over the devices it was given.
using balancer_actor = caf::typed_actor<
  // Allocates on the hinted device, or on the one the routing policy picks.
  caf::replies_to<allocate_atom, allocation_request>::with<region_handle>,
  // Frees the region on handle.device.
  caf::replies_to<deallocate_atom, region_handle>::with<ok_atom>,
  // Marks the region used now, on handle.device.
  caf::replies_to<touch_atom, region_handle>::with<ok_atom>,
  // Allocates every request (each routed) or none: frees the rest and answers the cause.
  caf::replies_to<batch_allocate_atom, batch_allocation_request>::with<batch_allocation_response>,
  // Frees the regions, one batch per device (each all or nothing); the answer names
  // the devices that failed.
  caf::replies_to<batch_deallocate_atom, batch_deallocation_request>::with<ok_atom>,
  // Sleeps every device with this policy; one report per device, in device order.
  caf::replies_to<sleep_all_atom, sleep_policy>::with<std::vector<transition_report>>,
  // Wakes these tags (empty: all) on every device; one report per device.
  caf::replies_to<wake_all_atom, std::vector<std::string>>::with<std::vector<transition_report>>,
  // Every device's statistics and their sum.
  caf::replies_to<stats_atom>::with<cluster_statistics>,
  // Starts routing to this allocator; answers what it reports of itself.
  caf::replies_to<add_device_atom, device_allocator_actor>::with<device_info>,
  // Stops routing to this device number (its live regions stay where they are).
  caf::replies_to<remove_device_atom, std::int32_t>::with<ok_atom>,
  // Every device it routes to, in device order.
  caf::replies_to<info_atom>::with<std::vector<device_info>>,
  // The balancer's state and every device's.
  caf::replies_to<status_atom>::with<balancer_status>>;

/// Watches the devices' free memory and tells subscribers when a level changes.
using pressure_monitor_actor = caf::typed_actor<
  // Adds a subscriber to every device (monitored: it leaves when it dies); again: no-op.
  caf::replies_to<subscribe_atom, pressure_subscriber_actor>::with<ok_atom>,
  // Adds a subscriber to one device's events (-1: every device); unknown_device if unwatched.
  caf::replies_to<subscribe_atom, pressure_subscriber_actor, std::int32_t>::with<ok_atom>,
  // Removes a subscriber from every device; unknown ones are a no-op.
  caf::replies_to<unsubscribe_atom, pressure_subscriber_actor>::with<ok_atom>,
  // The latest reading of every device (level == previous unless it just changed).
  caf::replies_to<pressure_atom>::with<std::vector<pressure_event>>,
  // The monitor's state.
  caf::replies_to<status_atom>::with<pressure_monitor_status>>;

/// A node: one runtime served over the network (gpumem node). A remote client asks it
/// once for the runtime's handles, then sends its requests to them directly, each with
/// a deadline (a lost peer sends nothing).
using node_actor = caf::typed_actor<
  // What the node is and serves.
  caf::replies_to<info_atom>::with<node_info>,
  // The runtime's handles (the allocators in device order), and what info answers.
  caf::replies_to<endpoint_atom>::with<balancer_actor, std::vector<device_allocator_actor>,
                                       pressure_monitor_actor, node_info>>;

/// Anything that wants to hear of every node's pressure changes through a cluster.
using cluster_subscriber_actor = caf::typed_actor<
  // A node's device changed pressure level.
  caf::reacts_to<node_pressure_event>>;

/// A cluster: watches a set of nodes (a heartbeat with a deadline, and CAF's monitors)
/// and serves them as one. Every request to a node carries a deadline; a node lost
/// during a request ends it with node_unreachable naming the node.
using cluster_actor = caf::typed_actor<
  // Adds the node at "host:port" (again: no-op) and answers it once it is up, or why
  // it could not be reached; a node that cannot be reached is still watched.
  caf::replies_to<join_atom, std::string>::with<cluster_node>,
  // Forgets a node (unknown_device where it is not known).
  caf::replies_to<leave_atom, std::string>::with<ok_atom>,
  // Every node and its health.
  caf::replies_to<status_atom>::with<cluster_status>,
  // Every node's statistics that is up, and their sum.
  caf::replies_to<stats_atom>::with<nodes_statistics>,
  // Allocates on the named node, or on the one up with the most free memory.
  caf::replies_to<allocate_atom, placement_request>::with<placed_region>,
  // Frees a placed region on its node.
  caf::replies_to<deallocate_atom, placed_region>::with<ok_atom>,
  // Sleeps or wakes the nodes named, all or nothing: every device of every node
  // prepares, then all commit; a failure, or a node lost, aborts the rest (nodes that
  // had committed a sleep are woken again) and the error names the node and the cause.
  caf::replies_to<collective_atom, collective_request>::with<std::vector<node_transition>>,
  // Forwards every node's pressure events to this subscriber (monitored: it leaves
  // when it dies); again: no-op.
  caf::replies_to<subscribe_atom, cluster_subscriber_actor>::with<ok_atom>,
  caf::replies_to<unsubscribe_atom, cluster_subscriber_actor>::with<ok_atom>>;

} // namespace gpumem::messages
