// The balancer's routing policies: which device an allocation goes to.

#include <algorithm>
#include <string>
#include <vector>

#include "balancer_internal.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

bool is_critical(const balancer_state& st, std::int32_t device) {
  auto i = st.pressure.find(device);
  return i != st.pressure.end() && i->second == pressure_level::critical;
}

bool was_tried(const std::vector<std::int32_t>& tried, std::int32_t device) {
  return std::find(tried.begin(), tried.end(), device) != tried.end();
}

/// The devices a request may go to: the untried non-critical ones with room when
/// there are any, else every untried device.
std::vector<std::int32_t> candidates(const balancer_state& st, std::uint64_t size,
                                     const std::vector<std::int32_t>& tried) {
  std::vector<std::int32_t> result;
  for (auto& [id, d] : st.devices)
    if (!was_tried(tried, id) && !is_critical(st, id) && estimated_free(d) >= size)
      result.push_back(id);
  if (result.empty())  // no healthy device has room: every untried device is a candidate
    for (auto& [id, d] : st.devices)
      if (!was_tried(tried, id))
        result.push_back(id);
  return result;
}

std::int32_t least_loaded(const balancer_state& st, const std::vector<std::int32_t>& ids) {
  auto best = ids.front();
  for (auto id : ids)
    if (estimated_free(st.devices.at(id)) > estimated_free(st.devices.at(best)))
      best = id;
  return best;
}

std::int32_t round_robin(balancer_state& st, const std::vector<std::int32_t>& ids) {
  std::vector<std::int32_t> order;
  for (auto& [id, d] : st.devices)
    order.push_back(id);
  for (std::size_t k = 0; k < order.size(); ++k) {
    auto pos = (st.next_round_robin + k) % order.size();
    if (std::find(ids.begin(), ids.end(), order[pos]) != ids.end()) {
      st.next_round_robin = pos + 1;
      return order[pos];
    }
  }
  return ids.front();  // unreachable: ids is a non-empty subset of order
}

/// The tag's device unless it is critical while others have room, or was tried.
std::int32_t tag_affinity(balancer_state& st, const std::string& tag,
                          const std::vector<std::int32_t>& ids,
                          const std::vector<std::int32_t>& tried) {
  auto i = st.affinity.find(tag);
  bool pinned = i != st.affinity.end() && st.devices.count(i->second) != 0;
  if (pinned && !was_tried(tried, i->second) &&
      (!is_critical(st, i->second) ||
       std::find(ids.begin(), ids.end(), i->second) != ids.end()))
    return i->second;
  if (pinned)
    return least_loaded(st, ids);  // its device is critical or tried: elsewhere this time
  auto chosen = least_loaded(st, ids);
  st.affinity[tag] = chosen;
  return chosen;
}

} // namespace

std::uint64_t estimated_free(const device_entry& d) {
  return d.info.free_bytes > d.pending_bytes ? d.info.free_bytes - d.pending_bytes : 0;
}

caf::expected<std::int32_t> route(balancer_state& st, const allocation_request& request,
                                  const std::vector<std::int32_t>& tried) {
  if (request.device_hint >= 0) {
    if (st.devices.count(request.device_hint) == 0)
      return make_error(gpumem_errc::unknown_device,
                        "device_hint " + std::to_string(request.device_hint) +
                          ": no such device behind this balancer");
    return request.device_hint;
  }
  if (st.devices.empty())
    return make_error(gpumem_errc::no_device_available, "the balancer has no devices");
  auto ids = candidates(st, request.size, tried);
  if (ids.empty())
    return make_error(gpumem_errc::no_device_available, "every device was tried");
  switch (st.options.routing) {
    case routing_policy::least_loaded: return least_loaded(st, ids);
    case routing_policy::round_robin: return round_robin(st, ids);
    case routing_policy::tag_affinity: return tag_affinity(st, request.tag, ids, tried);
  }
  return make_error(gpumem_errc::invalid_config, "unknown routing policy");
}

} // namespace gpumem::actors::balancing
