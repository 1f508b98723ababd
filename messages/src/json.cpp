#include "gpumem/messages/json.hpp"

#include <algorithm>

namespace gpumem::messages {

using nlohmann::json;

namespace {

double per_second(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds : 0.0;
}

std::uint64_t copied(const transition_report& r) {
  return r.kind == transition_kind::sleep ? r.bytes_backed_up : r.bytes_restored;
}

json of(const stat& s) {
  return {{"current", s.current}, {"peak", s.peak}, {"allocated", s.allocated}, {"freed", s.freed}};
}

json of(const stat_grid& g) {
  return {{"allocated_bytes", of(g.allocated)}, {"requested_bytes", of(g.requested)},
          {"active_bytes", of(g.active)},       {"reserved_bytes", of(g.reserved)},
          {"cached_bytes", of(g.cached)},       {"allocations", g.allocations},
          {"frees", g.frees}};
}

json of(const duration_buckets& b) {
  return {{"upper_bounds", b.upper_bounds}, {"counts", b.counts}};
}

json of(const statistics& s) {
  json tags = json::object();
  for (const auto& t : s.tags)
    tags[t.tag] = of(t.grid);
  return {{"device", s.device},
          {"total", of(s.total)},
          {"tags", std::move(tags)},
          {"ooms", s.ooms},
          {"oom_retries", s.oom_retries},
          {"segments_created", s.segments_created},
          {"segments_released", s.segments_released},
          {"chunks_created", s.chunks_created},
          {"chunks_reused", s.chunks_reused},
          {"chunks_released", s.chunks_released},
          {"sleeps", s.sleeps},
          {"wakes", s.wakes},
          {"failed_transitions", s.failed_transitions},
          {"bytes_backed_up", s.bytes_backed_up},
          {"bytes_restored", s.bytes_restored},
          {"bytes_discarded", s.bytes_discarded},
          {"sleep_seconds", s.sleep_seconds},
          {"wake_seconds", s.wake_seconds},
          {"trims", s.trims},
          {"defragmentations", s.defragmentations},
          {"bytes_trimmed", s.bytes_trimmed},
          {"sleep_durations", of(s.sleep_durations)},
          {"wake_durations", of(s.wake_durations)}};
}

json of(const device_status& d) {
  return {{"device", d.device},
          {"state", to_string(d.state)},
          {"pressure", to_string(d.pressure)},
          {"asleep_tags", d.asleep_tags},
          {"offloaded_tags", d.offloaded_tags},
          {"live_regions", d.live_regions},
          {"physical_bytes", d.physical_bytes},
          {"pending_requests", d.pending_requests},
          {"fragmentation", d.fragmentation},
          {"pressure_responses", d.pressure_responses},
          {"last_response_ms", d.last_response_ms},
          {"max_response_ms", d.max_response_ms},
          {"total_response_ms", d.total_response_ms},
          {"response_durations", of(d.response_durations)},
          {"offloads", d.offloads},
          {"offload_wakes", d.offload_wakes},
          {"bytes_offloaded", d.bytes_offloaded},
          {"offload_wait_reason", d.offload_wait_reason},
          {"lost", d.lost}};
}

} // namespace

json to_json(const transition_report& r) {
  return {{"device", r.device},
          {"kind", to_string(r.kind)},
          {"tags", r.tags},
          {"bytes_backed_up", r.bytes_backed_up},
          {"bytes_discarded", r.bytes_discarded},
          {"bytes_released", r.bytes_released},
          {"bytes_mapped", r.bytes_mapped},
          {"bytes_restored", r.bytes_restored},
          {"seconds", r.seconds},
          {"copy_seconds", r.copy_seconds},
          {"bandwidth_bytes_per_second", per_second(copied(r), r.seconds)}};
}

json to_json(const std::vector<transition_report>& reports) {
  transition_report sum;
  std::vector<std::string> tags;
  std::uint64_t bytes_copied = 0;
  json devices = json::array();
  for (const auto& r : reports) {
    sum.bytes_backed_up += r.bytes_backed_up;
    sum.bytes_discarded += r.bytes_discarded;
    sum.bytes_released += r.bytes_released;
    sum.bytes_mapped += r.bytes_mapped;
    sum.bytes_restored += r.bytes_restored;
    sum.seconds = std::max(sum.seconds, r.seconds);  // the devices move at once
    bytes_copied += copied(r);
    for (const auto& t : r.tags)
      if (std::find(tags.begin(), tags.end(), t) == tags.end())
        tags.push_back(t);
    devices.push_back(to_json(r));
  }
  std::sort(tags.begin(), tags.end());
  return {{"tags", tags},
          {"bytes_backed_up", sum.bytes_backed_up},
          {"bytes_discarded", sum.bytes_discarded},
          {"bytes_released", sum.bytes_released},
          {"bytes_mapped", sum.bytes_mapped},
          {"bytes_restored", sum.bytes_restored},
          {"seconds", sum.seconds},
          {"bandwidth_bytes_per_second", per_second(bytes_copied, sum.seconds)},
          {"devices", std::move(devices)}};
}

json to_json(const cluster_statistics& s) {
  json devices = json::array();
  for (const auto& d : s.devices)
    devices.push_back(of(d));
  auto total = of(s.total);
  total.erase("device");
  return {{"total", std::move(total)}, {"devices", std::move(devices)}};
}

json to_json(const balancer_status& status, const std::vector<device_info>& devices) {
  json list = json::array();
  for (const auto& d : status.devices) {
    auto entry = of(d);
    auto info = std::find_if(devices.begin(), devices.end(),
                             [&](const device_info& i) { return i.device == d.device; });
    if (info != devices.end()) {
      entry["name"] = info->name;
      entry["backend"] = info->backend;
      entry["total_bytes"] = info->total_bytes;
      entry["free_bytes"] = info->free_bytes;
      entry["granularity"] = info->granularity;
    }
    list.push_back(std::move(entry));
  }
  return {{"routing", status.routing},
          {"allocations_routed", status.allocations_routed},
          {"allocations_rejected", status.allocations_rejected},
          {"devices", std::move(list)}};
}

json to_json(const trim_report& r) {
  return {{"device", r.device},
          {"bytes_released", r.bytes_released},
          {"segments_released", r.segments_released}};
}

json to_json(const defragment_report& r) {
  return {{"device", r.device},
          {"bytes_released_cached", r.bytes_released_cached},
          {"bytes_released_tails", r.bytes_released_tails},
          {"segments_released", r.segments_released},
          {"fragmentation_before", r.fragmentation_before},
          {"fragmentation_after", r.fragmentation_after}};
}

json to_json(const cluster_status& s) {
  json nodes = json::array();
  for (const auto& n : s.nodes) {
    json devices = json::array();
    for (const auto& d : n.info.devices)
      devices.push_back({{"device", d.device},
                         {"name", d.name},
                         {"backend", d.backend},
                         {"state", to_string(d.state)},
                         {"total_bytes", d.total_bytes},
                         {"free_bytes", d.free_bytes}});
    nodes.push_back({{"address", n.address},
                     {"health", to_string(n.health)},
                     {"cause", n.cause},
                     {"since_seen_ms", n.since_seen_ms},
                     {"node_id", n.info.node_id},
                     {"host", n.info.host},
                     {"pid", n.info.pid},
                     {"devices", std::move(devices)}});
  }
  return {{"heartbeat_ms", s.heartbeat_ms}, {"deadline_ms", s.deadline_ms},
          {"nodes", std::move(nodes)}};
}

json to_json(const nodes_statistics& s) {
  json nodes = json::array();
  for (const auto& n : s.nodes) {
    auto entry = to_json(n.devices);
    entry["node"] = n.node;
    nodes.push_back(std::move(entry));
  }
  auto total = of(s.total);
  total.erase("device");
  return {{"total", std::move(total)}, {"nodes", std::move(nodes)}};
}

json to_json(const std::vector<node_transition>& nodes) {
  json list = json::array();
  for (const auto& n : nodes) {
    auto entry = to_json(n.devices);
    entry["node"] = n.node;
    list.push_back(std::move(entry));
  }
  return {{"nodes", std::move(list)}};
}

} // namespace gpumem::messages
