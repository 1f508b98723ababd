#pragma once
// The blocking client, for thread-pool servers and tools: every call returns the
// answer or an error value, by its deadline (default: the runtime's own timeout plus a
// quarter), whatever happens to the runtime. Any number of threads may call one client
// at once. A call hands its request to the client's bridge actor and waits on a
// per-call handoff (briefly spinning, then a condition variable), not on a
// scoped_actor, which costs CAF 0.17 tens of microseconds a request.
//
//   gpumem::client::blocking_client c(gpumem::client::local_endpoint(sys, *rt));
//   auto scope = c.scope("kv_cache");          // this thread's untagged allocations
//   auto region = c.allocate(64 << 20);         // result<region_handle>
//   if (!region) log(region.error().to_string());
//   (void)c.deallocate(*region);

#include <cstdint>
#include <string>
#include <vector>

#include "gpumem/client/connection.hpp"
#include "gpumem/client/tag_scope.hpp"

namespace gpumem::client {

class blocking_client {
public:
  /// Spawns the client's bridge in endpoint.system, which must outlive the client.
  explicit blocking_client(endpoint ep) : connection_(std::move(ep)) {}

  /// `size` bytes tagged `tag` (empty: the thread's scope), placed as the runtime chooses.
  result<messages::region_handle> allocate(std::uint64_t size, std::string tag = {},
                                           timeout t = {}) const;
  result<messages::region_handle> allocate(allocation_spec spec, timeout t = {}) const;
  result<void> deallocate(const messages::region_handle& region, timeout t = {}) const;
  /// Marks the region used now (least recently used tags are offloaded first).
  result<void> touch(const messages::region_handle& region, timeout t = {}) const;
  /// Every allocation or none, in the order of `specs`.
  result<std::vector<messages::region_handle>> allocate_batch(std::vector<allocation_spec> specs,
                                                              timeout t = {}) const;
  result<void> deallocate_batch(std::vector<messages::region_handle> regions,
                                timeout t = {}) const;
  /// Level 1 keeps the weights tag, level 2 nothing (see messages::sleep_policy); tags
  /// empty: every tag. One report per device.
  result<std::vector<messages::transition_report>> sleep(std::int32_t level,
                                                         std::vector<std::string> tags = {},
                                                         timeout t = {}) const;
  /// As `policy` says (level 0 backs up exactly its backup_tags).
  result<std::vector<messages::transition_report>> sleep(messages::sleep_policy policy,
                                                         timeout t = {}) const;
  result<std::vector<messages::transition_report>> wake_up(std::vector<std::string> tags = {},
                                                           timeout t = {}) const;
  result<bool> is_sleeping(std::vector<std::string> tags = {}, timeout t = {}) const;
  result<messages::cluster_statistics> statistics(timeout t = {}) const;
  result<messages::memory_snapshot> snapshot(std::int32_t device, timeout t = {}) const;
  /// Returns one device's wholly free cached segments to it.
  result<messages::trim_report> trim(std::int32_t device, timeout t = {}) const;
  /// Trims one device and releases the free tails of its live segments; moves nothing.
  result<messages::defragment_report> defragment(std::int32_t device, timeout t = {}) const;
  result<messages::balancer_status> status(timeout t = {}) const;
  result<std::vector<messages::device_info>> devices(timeout t = {}) const;
  /// `on_event` runs on a CAF thread: keep it short and never call the client from it
  /// (that would wait on the thread that must deliver the answer).
  result<subscription> subscribe(std::function<void(const messages::pressure_event&)> on_event,
                                 std::int32_t device = messages::every_device,
                                 timeout t = {}) const;

  /// Tags this thread's allocations that name no tag until the scope ends.
  [[nodiscard]] tag_scope scope(std::string tag) const { return tag_scope{std::move(tag)}; }

  const connection& core() const noexcept { return connection_; }

private:
  connection connection_;
};

} // namespace gpumem::client
