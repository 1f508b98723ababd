#include <nlohmann/json.hpp>

#include "c_state.hpp"

namespace gpumem::c_abi {

namespace {

using nlohmann::json;

json of(const messages::stat& s) {
  return {{"current", s.current}, {"peak", s.peak}, {"allocated", s.allocated},
          {"freed", s.freed}};
}

json of(const messages::stat_grid& g) {
  return {{"allocated_bytes", of(g.allocated)}, {"requested_bytes", of(g.requested)},
          {"active_bytes", of(g.active)},       {"reserved_bytes", of(g.reserved)},
          {"cached_bytes", of(g.cached)},       {"allocations", g.allocations},
          {"frees", g.frees}};
}

json of(const messages::statistics& s) {
  json tags = json::object();
  for (const auto& t : s.tags)
    tags[t.tag] = of(t.grid);
  return {{"device", s.device},
          {"total", of(s.total)},
          {"tags", tags},
          {"ooms", s.ooms},
          {"sleeps", s.sleeps},
          {"wakes", s.wakes},
          {"failed_transitions", s.failed_transitions},
          {"bytes_backed_up", s.bytes_backed_up},
          {"bytes_restored", s.bytes_restored},
          {"bytes_discarded", s.bytes_discarded},
          {"sleep_seconds", s.sleep_seconds},
          {"wake_seconds", s.wake_seconds},
          {"trims", s.trims},
          {"bytes_trimmed", s.bytes_trimmed}};
}

} // namespace

std::string statistics_json(const messages::cluster_statistics& stats) {
  json devices = json::array();
  for (const auto& d : stats.devices)
    devices.push_back(of(d));
  return json{{"total", of(stats.total)}, {"devices", devices}}.dump();
}

} // namespace gpumem::c_abi
