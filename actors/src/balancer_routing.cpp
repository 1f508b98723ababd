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

/// Which devices a request may go to: the untried non-critical ones with room when
/// there are any, else every untried device. Computed without building a list: it
/// runs for every request of every batch.
class eligibility {
public:
  eligibility(const balancer_state& st, std::uint64_t size,
              const std::vector<std::int32_t>& tried)
    : st_(st), size_(size), tried_(tried) {
    for (auto& [id, d] : st.devices)
      if (healthy_with_room(id, d)) {
        only_healthy_ = true;
        break;
      }
  }
  bool operator()(std::int32_t id) const {
    if (was_tried(tried_, id))
      return false;
    return !only_healthy_ || healthy_with_room(id, st_.devices.at(id));
  }

private:
  bool healthy_with_room(std::int32_t id, const device_entry& d) const {
    return !was_tried(tried_, id) && !is_critical(st_, id) && estimated_free(d) >= size_;
  }
  const balancer_state& st_;
  std::uint64_t size_;
  const std::vector<std::int32_t>& tried_;
  bool only_healthy_ = false;
};

/// The eligible device with the most estimated free bytes; -1 if none is eligible.
std::int32_t least_loaded(const balancer_state& st, const eligibility& eligible) {
  std::int32_t best = -1;
  std::uint64_t best_free = 0;
  for (auto& [id, d] : st.devices) {
    if (!eligible(id))
      continue;
    auto free = estimated_free(d);
    if (best < 0 || free > best_free) {
      best = id;
      best_free = free;
    }
  }
  return best;
}

std::int32_t round_robin(balancer_state& st, const eligibility& eligible) {
  auto count = st.devices.size();
  for (std::size_t k = 0; k < count; ++k) {
    auto pos = (st.next_round_robin + k) % count;
    auto id = std::next(st.devices.begin(), static_cast<std::ptrdiff_t>(pos))->first;
    if (eligible(id)) {
      st.next_round_robin = pos + 1;
      return id;
    }
  }
  return -1;
}

/// The tag's device unless it is critical while others have room, or was tried.
std::int32_t tag_affinity(balancer_state& st, const std::string& tag,
                          const eligibility& eligible, const std::vector<std::int32_t>& tried) {
  auto i = st.affinity.find(tag);
  bool pinned = i != st.affinity.end() && st.devices.count(i->second) != 0;
  if (pinned && !was_tried(tried, i->second) &&
      (!is_critical(st, i->second) || eligible(i->second)))
    return i->second;
  auto chosen = least_loaded(st, eligible);
  if (!pinned && chosen >= 0)
    st.affinity[tag] = chosen;
  return chosen;  // a pinned tag whose device is critical or tried: elsewhere this time
}

} // namespace

std::uint64_t estimated_free(const device_entry& d) {
  return d.info.free_bytes > d.pending_bytes ? d.info.free_bytes - d.pending_bytes : 0;
}

void settle_pending(balancer_state& st, std::int32_t device, std::uint64_t bytes) {
  if (auto* d = find_device(st, device))
    d->pending_bytes -= std::min(d->pending_bytes, bytes);
}

void note_allocated(balancer_state& st, std::int32_t device, std::uint64_t bytes) {
  if (auto* d = find_device(st, device))
    d->info.free_bytes -= std::min(d->info.free_bytes, bytes);
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
  eligibility eligible(st, request.size, tried);
  std::int32_t chosen = -1;
  switch (st.options.routing) {
    case routing_policy::least_loaded: chosen = least_loaded(st, eligible); break;
    case routing_policy::round_robin: chosen = round_robin(st, eligible); break;
    case routing_policy::tag_affinity:
      chosen = tag_affinity(st, request.tag, eligible, tried);
      break;
  }
  if (chosen >= 0)
    return chosen;
  if (!tried.empty())
    return make_error(gpumem_errc::no_device_available, "every device was tried");
  return make_error(gpumem_errc::invalid_config, "unknown routing policy");
}

} // namespace gpumem::actors::balancing
