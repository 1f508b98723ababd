// CAF 0.17.6's loader for std::vector<enum> (which add_message_type registers with each
// enum) reads into a local that g++ 12 thinks may be uninitialized after inlining: a
// false positive inside CAF's headers. Silenced in this file only, and for GCC only:
// clang has no such warning (and would warn about the unknown name).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "gpumem/messages/register.hpp"

#include <caf/actor_system_config.hpp>

#include "gpumem/messages/actors.hpp"
#include "gpumem/messages/errors.hpp"
#include "gpumem/messages/types.hpp"

namespace gpumem::messages {

void register_protocol(caf::actor_system_config& cfg) {
  // Each call also registers std::vector<T> as "std::vector<name>".
  cfg.add_message_type<strategy>("gpumem::strategy")
    .add_message_type<device_state>("gpumem::device_state")
    .add_message_type<transition_kind>("gpumem::transition_kind")
    .add_message_type<pressure_level>("gpumem::pressure_level")
    .add_message_type<region_handle>("gpumem::region_handle")
    .add_message_type<allocation_request>("gpumem::allocation_request")
    .add_message_type<batch_allocation_request>("gpumem::batch_allocation_request")
    .add_message_type<batch_allocation_response>("gpumem::batch_allocation_response")
    .add_message_type<batch_deallocation_request>("gpumem::batch_deallocation_request")
    .add_message_type<sleep_policy>("gpumem::sleep_policy")
    .add_message_type<transition_report>("gpumem::transition_report")
    .add_message_type<trim_report>("gpumem::trim_report")
    .add_message_type<defragment_report>("gpumem::defragment_report")
    .add_message_type<stat>("gpumem::stat")
    .add_message_type<stat_grid>("gpumem::stat_grid")
    .add_message_type<duration_buckets>("gpumem::duration_buckets")
    .add_message_type<tag_stat_grid>("gpumem::tag_stat_grid")
    .add_message_type<statistics>("gpumem::statistics")
    .add_message_type<cluster_statistics>("gpumem::cluster_statistics")
    .add_message_type<memory_snapshot>("gpumem::memory_snapshot")
    .add_message_type<device_info>("gpumem::device_info")
    .add_message_type<pressure_event>("gpumem::pressure_event")
    .add_message_type<device_status>("gpumem::device_status")
    .add_message_type<balancer_status>("gpumem::balancer_status")
    .add_message_type<pressure_monitor_status>("gpumem::pressure_monitor_status")
    .add_message_type<node_info>("gpumem::node_info")
    .add_message_type<node_health>("gpumem::node_health")
    .add_message_type<cluster_node>("gpumem::cluster_node")
    .add_message_type<cluster_status>("gpumem::cluster_status")
    .add_message_type<node_statistics>("gpumem::node_statistics")
    .add_message_type<nodes_statistics>("gpumem::nodes_statistics")
    .add_message_type<placement_request>("gpumem::placement_request")
    .add_message_type<placed_region>("gpumem::placed_region")
    .add_message_type<collective_request>("gpumem::collective_request")
    .add_message_type<node_transition>("gpumem::node_transition")
    .add_message_type<node_pressure_event>("gpumem::node_pressure_event")
    // Actor handles that travel inside messages (subscribe, add_device), and the rest
    // so that clients may pass any of them around.
    .add_message_type<pressure_subscriber_actor>("gpumem::pressure_subscriber_actor")
    .add_message_type<device_allocator_actor>("gpumem::device_allocator_actor")
    .add_message_type<balancer_actor>("gpumem::balancer_actor")
    .add_message_type<pressure_monitor_actor>("gpumem::pressure_monitor_actor")
    .add_message_type<node_actor>("gpumem::node_actor")
    .add_message_type<cluster_subscriber_actor>("gpumem::cluster_subscriber_actor")
    .add_message_type<cluster_actor>("gpumem::cluster_actor");
  cfg.add_error_category(error_category, render_error);
}

} // namespace gpumem::messages
