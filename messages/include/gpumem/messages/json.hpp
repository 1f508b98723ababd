#pragma once
// The protocol's values as JSON, one form wherever gpumem answers in JSON: the control
// plane's routes (docs/control.md) and the C ABI's gpumem_statistics_json.

#include <nlohmann/json.hpp>

#include <vector>

#include "types.hpp"

namespace gpumem::messages {

/// One device's sleep or wake: its bytes, seconds, and bandwidth (bytes copied per
/// second of the whole transition).
nlohmann::json to_json(const transition_report& r);
/// A transition over every device: the sums, its duration (the slowest device's),
/// the bandwidth over that, the tags moved, and each device's report.
nlohmann::json to_json(const std::vector<transition_report>& reports);
/// The statistics grid by device and tag, and the sum over devices.
nlohmann::json to_json(const cluster_statistics& s);
/// Each device's state, pressure, memory and tags asleep, from the balancer's status
/// and the devices' own reports.
nlohmann::json to_json(const balancer_status& status,
                       const std::vector<device_info>& devices);
nlohmann::json to_json(const trim_report& r);
nlohmann::json to_json(const defragment_report& r);
/// Every node of a cluster: address, health, why it is not up, its devices.
nlohmann::json to_json(const cluster_status& s);
/// The statistics grid summed over nodes, and each node's.
nlohmann::json to_json(const nodes_statistics& s);
/// A collective transition: each node's devices, as to_json of their reports.
nlohmann::json to_json(const std::vector<node_transition>& nodes);

} // namespace gpumem::messages
