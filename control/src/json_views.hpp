#pragma once
// The protocol's values as the JSON the routes answer (docs/control.md).

#include <nlohmann/json.hpp>

#include <vector>

#include "gpumem/messages/types.hpp"

namespace gpumem::control {

/// One device's sleep or wake: its bytes, seconds, and bandwidth (bytes copied per
/// second of the whole transition).
nlohmann::json to_json(const messages::transition_report& r);
/// A transition over every device: the sums, its duration (the slowest device's),
/// the bandwidth over that, the tags moved, and each device's report.
nlohmann::json to_json(const std::vector<messages::transition_report>& reports);
/// The statistics grid by device and tag, and the sum over devices.
nlohmann::json to_json(const messages::cluster_statistics& s);
/// Each device's state, pressure, memory and tags asleep, from the balancer's status
/// and the devices' own reports.
nlohmann::json to_json(const messages::balancer_status& status,
                       const std::vector<messages::device_info>& devices);
nlohmann::json to_json(const messages::trim_report& r);
nlohmann::json to_json(const messages::defragment_report& r);

} // namespace gpumem::control
