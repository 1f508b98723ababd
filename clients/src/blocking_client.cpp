#include "gpumem/client/blocking_client.hpp"

#include <chrono>
#include <memory>
#include <utility>

#include "gpumem/client/detail/handoff.hpp"

namespace gpumem::client {

namespace m = messages;
using std::chrono::milliseconds;

namespace {

/// Beyond the request's own deadline, which answers first with CAF's timeout: the
/// caller stops waiting here even if the bridge itself never answers.
constexpr milliseconds caller_slack{100};

/// Starts the call with a callback that hands its result over, and waits for it.
template <class T, class Start>
result<T> wait_for(milliseconds limit, Start&& start) {
  auto slot = std::make_shared<detail::handoff<T>>();
  start([slot](result<T> r) { slot->complete(std::move(r)); });
  const auto deadline = std::chrono::steady_clock::now() + limit + caller_slack;
  if (auto r = slot->wait(deadline))
    return std::move(*r);
  return failure{m::gpumem_errc::timeout,
               "no answer within " + std::to_string(limit.count()) + " ms"};
}

} // namespace

result<m::region_handle> blocking_client::allocate(std::uint64_t size, std::string tag,
                                                   timeout t) const {
  allocation_spec spec;
  spec.size = size;
  spec.tag = std::move(tag);
  return allocate(std::move(spec), t);
}

result<m::region_handle> blocking_client::allocate(allocation_spec spec, timeout t) const {
  // connection::allocate runs on this thread before the wait: it reads this thread's scope.
  return wait_for<m::region_handle>(t.value_or(connection_.request_deadline()), [&](auto done) {
    connection_.allocate(std::move(spec), t, std::move(done));
  });
}

result<void> blocking_client::deallocate(const m::region_handle& region, timeout t) const {
  return wait_for<void>(t.value_or(connection_.request_deadline()),
                        [&](auto done) { connection_.deallocate(region, t, std::move(done)); });
}

result<void> blocking_client::touch(const m::region_handle& region, timeout t) const {
  return wait_for<void>(t.value_or(connection_.request_deadline()),
                        [&](auto done) { connection_.touch(region, t, std::move(done)); });
}

result<std::vector<m::region_handle>>
blocking_client::allocate_batch(std::vector<allocation_spec> specs, timeout t) const {
  return wait_for<std::vector<m::region_handle>>(
    t.value_or(connection_.request_deadline()),
    [&](auto done) { connection_.allocate_batch(std::move(specs), t, std::move(done)); });
}

result<void> blocking_client::deallocate_batch(std::vector<m::region_handle> regions,
                                               timeout t) const {
  return wait_for<void>(t.value_or(connection_.request_deadline()), [&](auto done) {
    connection_.deallocate_batch(std::move(regions), t, std::move(done));
  });
}

result<std::vector<m::transition_report>>
blocking_client::sleep(std::int32_t level, std::vector<std::string> tags, timeout t) const {
  return wait_for<std::vector<m::transition_report>>(
    t.value_or(connection_.transition_deadline()),
    [&](auto done) { connection_.sleep(level, std::move(tags), t, std::move(done)); });
}

result<std::vector<m::transition_report>> blocking_client::sleep(m::sleep_policy policy,
                                                                 timeout t) const {
  return wait_for<std::vector<m::transition_report>>(
    t.value_or(connection_.transition_deadline()),
    [&](auto done) { connection_.sleep(std::move(policy), t, std::move(done)); });
}

result<std::vector<m::transition_report>> blocking_client::wake_up(std::vector<std::string> tags,
                                                                   timeout t) const {
  return wait_for<std::vector<m::transition_report>>(
    t.value_or(connection_.transition_deadline()),
    [&](auto done) { connection_.wake_up(std::move(tags), t, std::move(done)); });
}

result<bool> blocking_client::is_sleeping(std::vector<std::string> tags, timeout t) const {
  return wait_for<bool>(t.value_or(connection_.request_deadline()), [&](auto done) {
    connection_.is_sleeping(std::move(tags), t, std::move(done));
  });
}

result<m::cluster_statistics> blocking_client::statistics(timeout t) const {
  return wait_for<m::cluster_statistics>(
    t.value_or(connection_.request_deadline()),
    [&](auto done) { connection_.statistics(t, std::move(done)); });
}

result<m::memory_snapshot> blocking_client::snapshot(std::int32_t device, timeout t) const {
  return wait_for<m::memory_snapshot>(
    t.value_or(connection_.request_deadline()),
    [&](auto done) { connection_.snapshot(device, t, std::move(done)); });
}

result<m::trim_report> blocking_client::trim(std::int32_t device, timeout t) const {
  return wait_for<m::trim_report>(t.value_or(connection_.request_deadline()),
                                  [&](auto done) { connection_.trim(device, t, std::move(done)); });
}

result<m::defragment_report> blocking_client::defragment(std::int32_t device, timeout t) const {
  return wait_for<m::defragment_report>(
    t.value_or(connection_.request_deadline()),
    [&](auto done) { connection_.defragment(device, t, std::move(done)); });
}

result<m::balancer_status> blocking_client::status(timeout t) const {
  return wait_for<m::balancer_status>(t.value_or(connection_.request_deadline()),
                                      [&](auto done) { connection_.status(t, std::move(done)); });
}

result<std::vector<m::device_info>> blocking_client::devices(timeout t) const {
  return wait_for<std::vector<m::device_info>>(
    t.value_or(connection_.request_deadline()),
    [&](auto done) { connection_.devices(t, std::move(done)); });
}

result<subscription>
blocking_client::subscribe(std::function<void(const m::pressure_event&)> on_event,
                           std::int32_t device, timeout t) const {
  return wait_for<subscription>(t.value_or(connection_.request_deadline()), [&](auto done) {
    connection_.subscribe(std::move(on_event), device, t, std::move(done));
  });
}

} // namespace gpumem::client
