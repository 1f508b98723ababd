#pragma once
// The protocol's value types as the message fuzz target picks them by its first input
// byte, shared with the seed writer so that seeds name the type they hold.

#include <cstddef>
#include <type_traits>
#include <vector>

#include "gpumem/messages/types.hpp"

namespace gpumem::fuzz {

template <class... Ts>
struct type_list {
  /// Each type alone (even selectors) and in a std::vector (odd ones).
  static constexpr std::size_t selectors = 2 * sizeof...(Ts);

  /// The selector of type T alone.
  template <class T>
  static constexpr std::size_t selector_of() {
    std::size_t i = 0, found = selectors;
    ((std::is_same_v<T, Ts> ? (void)(found = i++) : (void)i++), ...);
    return 2 * found;
  }

  /// Calls f.template operator()<T>() for the type `selector` names.
  template <class F>
  static void visit(std::size_t selector, F&& f) {
    std::size_t i = 0;
    ((i++ == selector / 2
        ? (selector % 2 == 0 ? f.template operator()<Ts>()
                             : f.template operator()<std::vector<Ts>>())
        : void()),
     ...);
  }
};

// Every value type register_protocol() names, in its order (CAF registers the
// std::vector of each with it). The actor handles it also registers are left out:
// deserializing one needs a running actor system and a peer to resolve it.
namespace m = gpumem::messages;
using protocol_types =
  type_list<m::strategy, m::device_state, m::transition_kind, m::pressure_level, m::region_handle,
            m::allocation_request, m::batch_allocation_request, m::batch_allocation_response,
            m::batch_deallocation_request, m::sleep_policy, m::transition_report, m::trim_report,
            m::defragment_report, m::stat, m::stat_grid, m::tag_stat_grid, m::statistics,
            m::cluster_statistics, m::memory_snapshot, m::device_info, m::pressure_event,
            m::device_status, m::balancer_status, m::pressure_monitor_status, m::node_info,
            m::node_health, m::cluster_node, m::cluster_status, m::node_statistics,
            m::nodes_statistics, m::placement_request, m::placed_region,
            m::collective_request, m::node_transition, m::node_pressure_event>;

} // namespace gpumem::fuzz
