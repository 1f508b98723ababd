#include "gpumem/client/connection.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "gpumem/client/tag_scope.hpp"
#include "gpumem/messages/atoms.hpp"

namespace gpumem::client {

namespace m = messages;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {

/// Completes `done` with f(value) or with the error.
template <class R, class T, class F>
callback<R> mapped(callback<T> done, F f) {
  return [done = std::move(done), f = std::move(f)](result<R> r) {
    if (r)
      done(f(std::move(r).value()));
    else
      done(r.error());
  };
}

callback<m::ok_atom> to_void(callback<void> done) {
  return [done = std::move(done)](result<m::ok_atom> r) {
    done(r ? result<void>{} : result<void>{r.error()});
  };
}

/// The runtime's own deadline plus a quarter: its timeout answer comes first.
milliseconds with_grace(milliseconds t) {
  return t + t / 4;
}

} // namespace

m::allocation_request to_request(allocation_spec spec) {
  m::allocation_request r;
  r.size = spec.size;
  r.tag = spec.tag.empty() ? current_tag() : std::move(spec.tag);
  r.how = spec.how;
  r.alignment = spec.alignment;
  r.device_hint = spec.device;
  return r;
}

bool shows_sleeping(const m::balancer_status& status, const std::vector<std::string>& tags) {
  for (const auto& d : status.devices) {
    if (tags.empty()) {
      if (d.state != m::device_state::awake || !d.asleep_tags.empty())
        return true;
      continue;
    }
    for (const auto& tag : tags)
      if (std::find(d.asleep_tags.begin(), d.asleep_tags.end(), tag) != d.asleep_tags.end())
        return true;
  }
  return false;
}

connection::connection(endpoint ep)
  : endpoint_(std::move(ep)), bridge_(*endpoint_.system) {}

connection::~connection() = default;

milliseconds connection::request_deadline() const noexcept {
  return with_grace(endpoint_.request_timeout);
}

milliseconds connection::transition_deadline() const noexcept {
  return with_grace(endpoint_.transition_timeout);
}

caf::duration connection::resolve(timeout t, milliseconds own) const {
  const auto limit = t.value_or(with_grace(own));
  if (endpoint_.answers_by_deadline && limit >= own)
    return caf::duration{caf::infinite};
  // A zero or negative timeout still asks: the request then times out at once.
  return caf::duration{std::max(microseconds{1}, microseconds{limit})};
}

caf::duration connection::bounded(timeout t, milliseconds own) const {
  return caf::duration{std::max(microseconds{1}, microseconds{t.value_or(with_grace(own))})};
}
void connection::allocate(allocation_spec spec, timeout t,
                          callback<m::region_handle> done) const {
  bridge_.request<m::region_handle>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                                    std::move(done), m::allocate_atom::value,
                                    to_request(std::move(spec)));
}

void connection::deallocate(const m::region_handle& region, timeout t,
                            callback<void> done) const {
  bridge_.request<m::ok_atom>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                              to_void(std::move(done)), m::deallocate_atom::value, region);
}

void connection::touch(const m::region_handle& region, timeout t, callback<void> done) const {
  bridge_.request<m::ok_atom>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                              to_void(std::move(done)), m::touch_atom::value, region);
}

void connection::allocate_batch(std::vector<allocation_spec> specs, timeout t,
                                callback<std::vector<m::region_handle>> done) const {
  m::batch_allocation_request batch;
  batch.requests.reserve(specs.size());
  for (auto& spec : specs)
    batch.requests.push_back(to_request(std::move(spec)));
  bridge_.request<m::batch_allocation_response>(
    endpoint_.balancer, resolve(t, endpoint_.request_timeout),
    mapped<m::batch_allocation_response>(
      std::move(done), [](m::batch_allocation_response r) { return std::move(r.regions); }),
    m::batch_allocate_atom::value, std::move(batch));
}

void connection::deallocate_batch(std::vector<m::region_handle> regions, timeout t,
                                  callback<void> done) const {
  bridge_.request<m::ok_atom>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                              to_void(std::move(done)), m::batch_deallocate_atom::value,
                              m::batch_deallocation_request{std::move(regions)});
}

void connection::sleep(std::int32_t level, std::vector<std::string> tags, timeout t,
                       callback<std::vector<m::transition_report>> done) const {
  sleep(m::sleep_policy::at_level(level, std::move(tags)), t, std::move(done));
}

void connection::sleep(m::sleep_policy policy, timeout t,
                       callback<std::vector<m::transition_report>> done) const {
  bridge_.request<std::vector<m::transition_report>>(
    endpoint_.balancer, resolve(t, endpoint_.transition_timeout), std::move(done),
    m::sleep_all_atom::value, std::move(policy));
}

void connection::wake_up(std::vector<std::string> tags, timeout t,
                         callback<std::vector<m::transition_report>> done) const {
  bridge_.request<std::vector<m::transition_report>>(
    endpoint_.balancer, resolve(t, endpoint_.transition_timeout), std::move(done),
    m::wake_all_atom::value, std::move(tags));
}

void connection::is_sleeping(std::vector<std::string> tags, timeout t,
                             callback<bool> done) const {
  bridge_.request<m::balancer_status>(
    endpoint_.balancer, resolve(t, endpoint_.request_timeout),
    mapped<m::balancer_status>(std::move(done),
                               [tags = std::move(tags)](const m::balancer_status& s) {
                                 return shows_sleeping(s, tags);
                               }),
    m::status_atom::value);
}

void connection::statistics(timeout t, callback<m::cluster_statistics> done) const {
  bridge_.request<m::cluster_statistics>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                                         std::move(done), m::stats_atom::value);
}

template <class T>
const m::device_allocator_actor* connection::allocator(std::int32_t device,
                                                       callback<T>& done) const {
  if (device >= 0 && static_cast<std::size_t>(device) < endpoint_.allocators.size())
    return &endpoint_.allocators[static_cast<std::size_t>(device)];
  done(failure{m::gpumem_errc::unknown_device,
               "no device " + std::to_string(device) + " (this runtime has "
                 + std::to_string(endpoint_.allocators.size()) + ")"});
  return nullptr;
}

void connection::snapshot(std::int32_t device, timeout t,
                          callback<m::memory_snapshot> done) const {
  if (const auto* to = allocator(device, done))
    bridge_.request<m::memory_snapshot>(*to, resolve(t, endpoint_.request_timeout),
                                        std::move(done), m::snapshot_atom::value);
}

void connection::trim(std::int32_t device, timeout t, callback<m::trim_report> done) const {
  if (const auto* to = allocator(device, done))
    bridge_.request<m::trim_report>(*to, bounded(t, endpoint_.request_timeout), std::move(done),
                                    m::trim_atom::value);
}

void connection::defragment(std::int32_t device, timeout t,
                            callback<m::defragment_report> done) const {
  if (const auto* to = allocator(device, done))
    bridge_.request<m::defragment_report>(*to, bounded(t, endpoint_.request_timeout),
                                          std::move(done), m::defragment_atom::value);
}

void connection::status(timeout t, callback<m::balancer_status> done) const {
  bridge_.request<m::balancer_status>(endpoint_.balancer, resolve(t, endpoint_.request_timeout),
                                      std::move(done), m::status_atom::value);
}

void connection::devices(timeout t, callback<std::vector<m::device_info>> done) const {
  bridge_.request<std::vector<m::device_info>>(endpoint_.balancer,
                                               resolve(t, endpoint_.request_timeout),
                                               std::move(done), m::info_atom::value);
}

void connection::subscribe(std::function<void(const m::pressure_event&)> on_event,
                           std::int32_t device, timeout t, callback<subscription> done) const {
  if (!on_event) {
    done(failure{m::gpumem_errc::invalid_config, "subscribe: no callback given"});
    return;
  }
  auto subscriber = spawn_subscriber(*endpoint_.system, std::move(on_event));
  // The subscription owns the subscriber from here: if the monitor refuses, it dies.
  auto owned = std::make_shared<subscription>(subscriber);
  bridge_.request<m::ok_atom>(
    endpoint_.monitor, resolve(t, endpoint_.request_timeout),
    [owned, done = std::move(done)](result<m::ok_atom> r) {
      if (r)
        done(std::move(*owned));
      else
        done(r.error());
    },
    m::subscribe_atom::value, subscriber, device);
}

} // namespace gpumem::client
