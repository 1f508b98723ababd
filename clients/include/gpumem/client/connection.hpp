#pragma once
// The asynchronous core under both clients: every operation of the protocol as a call
// that returns at once and completes its callback exactly once, on a CAF thread of the
// bridge, with a value or an error (never later than the deadline: the request itself
// carries it). blocking_client waits on it; asio_client posts it to an executor.
// Thread-safe: any thread may call any operation at any time.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gpumem/client/detail/bridge.hpp"
#include "gpumem/client/endpoint.hpp"
#include "gpumem/client/result.hpp"
#include "gpumem/client/subscription.hpp"
#include "gpumem/messages/types.hpp"

namespace gpumem::client {

/// One allocation: its size and how to place it. An empty tag means the calling
/// thread's tag scope (tag_scope.hpp), read when the call is made.
struct allocation_spec {
  allocation_spec() = default;
  allocation_spec(std::uint64_t size_, std::string tag_ = {},
                  messages::strategy how_ = messages::strategy::configured,
                  std::uint64_t alignment_ = 0, std::int32_t device_ = messages::any_device)
    : size(size_), tag(std::move(tag_)), how(how_), alignment(alignment_), device(device_) {}

  std::uint64_t size = 0;
  std::string tag;
  messages::strategy how = messages::strategy::configured;
  std::uint64_t alignment = 0;                   // 0: the engine's default
  std::int32_t device = messages::any_device;    // a device number, or any
};

/// How long a call may take; nullopt: the endpoint's default for its kind.
using timeout = std::optional<std::chrono::milliseconds>;

template <class T>
using callback = detail::callback<T>;

class connection {
public:
  /// Spawns the bridge actor in endpoint.system (which must be set).
  explicit connection(endpoint ep);
  /// Stops the bridge: calls still in flight complete with an error.
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  const endpoint& target() const noexcept { return endpoint_; }
  /// The deadline a call of each kind gets when it names none.
  std::chrono::milliseconds request_deadline() const noexcept;
  std::chrono::milliseconds transition_deadline() const noexcept;

  void allocate(allocation_spec spec, timeout t, callback<messages::region_handle> done) const;
  void deallocate(const messages::region_handle& region, timeout t, callback<void> done) const;
  void touch(const messages::region_handle& region, timeout t, callback<void> done) const;
  /// All or nothing: the regions in the order of `specs`.
  void allocate_batch(std::vector<allocation_spec> specs, timeout t,
                      callback<std::vector<messages::region_handle>> done) const;
  void deallocate_batch(std::vector<messages::region_handle> regions, timeout t,
                        callback<void> done) const;
  /// Sleeps `tags` (empty: all) on every device at `level` (0, 1 or 2; see
  /// messages::sleep_policy); one report per device.
  void sleep(std::int32_t level, std::vector<std::string> tags, timeout t,
             callback<std::vector<messages::transition_report>> done) const;
  /// Sleeps as `policy` says on every device (level 0: backs up exactly its
  /// backup_tags); one report per device.
  void sleep(messages::sleep_policy policy, timeout t,
             callback<std::vector<messages::transition_report>> done) const;
  /// Wakes `tags` (empty: every sleeping tag) on every device.
  void wake_up(std::vector<std::string> tags, timeout t,
               callback<std::vector<messages::transition_report>> done) const;
  /// Whether any of `tags` (empty: anything) sleeps on any device.
  void is_sleeping(std::vector<std::string> tags, timeout t, callback<bool> done) const;
  void statistics(timeout t, callback<messages::cluster_statistics> done) const;
  /// One device's snapshot (JSON, docs/snapshot.md).
  void snapshot(std::int32_t device, timeout t, callback<messages::memory_snapshot> done) const;
  /// Returns one device's wholly free cached segments to it.
  void trim(std::int32_t device, timeout t, callback<messages::trim_report> done) const;
  /// Trims one device and releases the free tails of its live segments; moves nothing.
  void defragment(std::int32_t device, timeout t,
                  callback<messages::defragment_report> done) const;
  /// The balancer's state and every device's.
  void status(timeout t, callback<messages::balancer_status> done) const;
  /// What each device is and how much of it is free.
  void devices(timeout t, callback<std::vector<messages::device_info>> done) const;
  /// Calls `on_event` (on a CAF thread) for each pressure change of `device`
  /// (every_device: all) until the subscription is cancelled or destroyed.
  void subscribe(std::function<void(const messages::pressure_event&)> on_event,
                 std::int32_t device, timeout t, callback<subscription> done) const;

private:
  /// The request's CAF timeout: none where the endpoint answers by `own` itself and
  /// the call allows that long; else the call's (at least a microsecond).
  caf::duration resolve(timeout t, std::chrono::milliseconds own) const;
  /// The call's timeout (default: `own` plus a quarter) as CAF's, always finite: for
  /// requests that may wait in an allocator's queue behind a transition.
  caf::duration bounded(timeout t, std::chrono::milliseconds own) const;
  /// The allocator of `device`, or nullptr after completing `done` with unknown_device.
  template <class T>
  const messages::device_allocator_actor* allocator(std::int32_t device,
                                                    callback<T>& done) const;

  endpoint endpoint_;
  detail::bridge bridge_;
};

/// An allocation request as the protocol carries it, the tag filled in from the
/// calling thread's scope where the spec names none.
messages::allocation_request to_request(allocation_spec spec);

/// Whether `status` shows any of `tags` (empty: any tag) asleep, or a device not awake.
bool shows_sleeping(const messages::balancer_status& status,
                    const std::vector<std::string>& tags);

} // namespace gpumem::client
