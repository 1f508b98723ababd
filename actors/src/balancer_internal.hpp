#pragma once
// What the balancer's source files share: naming devices and errors, routing, asking a
// device with a deadline, gathering the answers of several devices, and the handlers
// each file implements. Internal to the actors library.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/error.hpp>
#include <caf/result.hpp>

#include "gpumem/actors/balancer.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::actors::balancing {

using device_entry = balancer_state::device_entry;

std::string device_name(std::int32_t device);
/// "code: message" of a gpumem error, CAF's rendering of any other.
std::string describe(const caf::error& e);
caf::error unknown_device(std::int32_t device);
/// A downstream failure as the balancer answers it: CAF errors become device_failure
/// naming the device and the operation; gpumem errors stay as they are.
caf::error downstream_error(std::int32_t device, const char* what, caf::error e);
device_entry* find_device(balancer_state& st, std::int32_t device);

// -- routing (balancer_routing.cpp) ------------------------------------------------

std::uint64_t estimated_free(const device_entry& d);
/// Requests of `bytes` routed to `device` were answered: no longer pending there.
void settle_pending(balancer_state& st, std::int32_t device, std::uint64_t bytes);
/// `bytes` were allocated on `device`: its free figure drops until the next refresh.
void note_allocated(balancer_state& st, std::int32_t device, std::uint64_t bytes);
/// Picks the device for `request` among the devices not in `tried`; an error when
/// none can be chosen.
caf::expected<std::int32_t> route(balancer_state& st,
                                  const messages::allocation_request& request,
                                  const std::vector<std::int32_t>& tried = {});

// -- asking devices ----------------------------------------------------------------

/// Which deadline a request gets.
enum class deadline_kind { request, transition };

/// Makes sure a sweep is on its way while requests are in flight.
void arm_sweep(balancer_pointer self);
/// Fails the overdue requests (the sweep message).
void sweep(balancer_pointer self);
caf::error timeout_error(const balancer_state& st, std::int32_t device, const char* what,
                         deadline_kind kind);
caf::error terminated_error(std::int32_t device, const char* what);

/// Sends xs... to a device with a deadline instead of a CAF timeout. Exactly one of
/// on_value(T&) and on_error(caf::error) runs: the reply, its failure, or the
/// timeout. A value that arrives after the deadline goes to on_late(T&) instead, to
/// be undone.
template <class T, class Handle, class OnValue, class OnError, class OnLate, class... Ts>
void ask(balancer_pointer self, std::int32_t device, const Handle& to, const char* what,
         deadline_kind kind, OnValue on_value, OnError on_error, OnLate on_late, Ts&&... xs) {
  auto& st = self->state;
  if (st.terminating) {  // a roll-back started by the last answers: nobody to ask
    on_error(terminated_error(device, what));
    return;
  }
  auto& table = kind == deadline_kind::request ? st.requests : st.transitions;
  auto timeout = kind == deadline_kind::request ? st.options.request_timeout
                                                : st.options.transition_timeout;
  auto ticket = table.add(self->clock().now() + timeout, [self, device, what, kind,
                                                          on_error]() mutable {
    if (self->state.terminating)
      on_error(terminated_error(device, what));
    else
      on_error(timeout_error(self->state, device, what, kind));
  });
  arm_sweep(self);
  auto settle = [self, kind, ticket] {
    auto& s = self->state;
    return (kind == deadline_kind::request ? s.requests : s.transitions).settle(ticket);
  };
  self->request(to, caf::infinite, std::forward<Ts>(xs)...)
    .then(
      [settle, on_value, on_late](T& x) mutable {
        if (settle())
          on_value(x);
        else
          on_late(x);
      },
      [settle, device, what, on_error](caf::error& e) mutable {
        if (settle())
          on_error(downstream_error(device, what, std::move(e)));
      });
}

/// A late answer with nothing to undo.
struct ignore_late {
  template <class T>
  void operator()(T&) const noexcept {}
};

/// Frees regions of one device that nobody will hold (one batch_deallocate); logs what
/// could not be freed; `then` runs when the device has answered (balancer_batch.cpp).
void free_regions(balancer_pointer self, std::int32_t device,
                  std::vector<messages::region_handle> regions, const char* why,
                  std::function<void()> then = [] {});

/// Asks one device for its info (free bytes) and status (pressure level).
void refresh(balancer_pointer self, std::int32_t device);

// -- gathering the answers of several devices --------------------------------------

/// One answer per target, in target order; `done` runs once every one is in.
template <class T>
struct gathering {
  std::vector<std::int32_t> devices;
  std::vector<std::optional<T>> values;
  std::vector<caf::error> errors;
  std::size_t pending = 0;
};

using targets = std::vector<std::pair<std::int32_t, messages::device_allocator_actor>>;

targets all_devices(const balancer_state& st);

/// Sends xs... to every target; done(gathering&) runs when all have answered.
/// on_late(device, T&) gets answers that came after their deadline.
template <class T, class Done, class OnLate, class... Ts>
void gather(balancer_pointer self, const targets& to, const char* what, deadline_kind kind,
            Done done, OnLate on_late, Ts... xs) {
  auto g = std::make_shared<gathering<T>>();
  g->pending = to.size();
  g->values.resize(to.size());
  g->errors.resize(to.size());
  for (auto& [id, handle] : to)
    g->devices.push_back(id);
  if (to.empty()) {
    done(*g);
    return;
  }
  for (std::size_t i = 0; i < to.size(); ++i) {
    auto device = to[i].first;
    ask<T>(
      self, device, to[i].second, what, kind,
      [=](T& x) mutable {
        g->values[i] = std::move(x);
        if (--g->pending == 0)
          done(*g);
      },
      [=](caf::error e) mutable {
        g->errors[i] = std::move(e);
        if (--g->pending == 0)
          done(*g);
      },
      [=](T& x) mutable { on_late(device, x); }, xs...);
  }
}

/// The first error of a gathering, or none.
template <class T>
const caf::error* first_error(const gathering<T>& g) {
  for (auto& e : g.errors)
    if (e)
      return &e;
  return nullptr;
}

// -- the handlers ------------------------------------------------------------------

// balancer_allocation.cpp
caf::result<messages::region_handle> on_allocate(balancer_pointer self,
                                                 messages::allocation_request request);
caf::result<messages::ok_atom> on_deallocate(balancer_pointer self,
                                             const messages::region_handle& h);
caf::result<messages::ok_atom> on_touch(balancer_pointer self, const messages::region_handle& h);

// balancer_batch.cpp
caf::result<messages::batch_allocation_response>
on_batch(balancer_pointer self, messages::batch_allocation_request batch);
caf::result<messages::ok_atom> on_batch_free(balancer_pointer self,
                                             messages::batch_deallocation_request batch);

// balancer_transitions.cpp
caf::result<std::vector<messages::transition_report>>
on_sleep_all(balancer_pointer self, messages::sleep_policy policy);
caf::result<std::vector<messages::transition_report>>
on_wake_all(balancer_pointer self, std::vector<std::string> tags);

// balancer_observation.cpp
caf::result<messages::cluster_statistics> on_stats(balancer_pointer self);
caf::result<std::vector<messages::device_info>> on_info(balancer_pointer self);
caf::result<messages::balancer_status> on_status(balancer_pointer self);

} // namespace gpumem::actors::balancing
