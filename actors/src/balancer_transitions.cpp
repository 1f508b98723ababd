// sleep_all and wake_all: every device at once, rolled back on the devices that
// succeeded when one fails, and undone on a device whose answer came after its deadline.

#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

using reports_promise = caf::typed_response_promise<std::vector<transition_report>>;

/// The request that undoes a transition `kind` that did `tags` on `device`: a wake of
/// what slept, or a sleep (the last sleep_all's policy, limited to those tags) of
/// what woke.
template <class OnDone>
void undo(balancer_pointer self, transition_kind kind, std::int32_t device,
          std::vector<std::string> tags, OnDone on_done) {
  auto& st = self->state;
  auto* d = find_device(st, device);
  if (!d) {
    on_done(make_error(gpumem_errc::unknown_device, device_name(device) + " left"));
    return;
  }
  auto ok = [on_done](transition_report&) mutable { on_done(caf::error{}); };
  auto failed = [on_done](caf::error e) mutable { on_done(std::move(e)); };
  if (kind == transition_kind::sleep) {
    ask<transition_report>(self, device, d->handle, "roll-back (wake)",
                           deadline_kind::transition, ok, failed, ignore_late{},
                           wake_atom::value, std::move(tags));
    return;
  }
  sleep_policy policy;
  if (auto i = st.last_sleep.find(device); i != st.last_sleep.end())
    policy = i->second;
  else
    policy = sleep_policy::backing_up(tags);  // nothing known: keep every woken byte
  policy.tags = std::move(tags);
  ask<transition_report>(self, device, d->handle, "roll-back (sleep)",
                         deadline_kind::transition, ok, failed, ignore_late{},
                         sleep_atom::value, std::move(policy));
}

/// A device finished its part after the deadline: the client was told it failed (and
/// the others were rolled back), so this device is rolled back too.
void undo_late(balancer_pointer self, transition_kind kind, std::int32_t device,
               transition_report& report) {
  const char* what = kind == transition_kind::sleep ? "sleep" : "wake";
  spdlog::warn("balancer: device {} finished its {} after the deadline; undoing it", device,
               what);
  undo(self, kind, device, report.tags, [device, what](const caf::error& e) {
    if (e)
      spdlog::error("balancer: undoing the late {} of device {} failed: {}", what, device,
                    describe(e));
  });
}

/// After a sleep_all or wake_all failed: undo it on the devices that succeeded, then
/// answer the first failure's code with a message naming the device and the cause.
void roll_back(balancer_pointer self, transition_kind kind,
               const gathering<transition_report>& g, reports_promise rp) {
  std::size_t failed = 0;
  while (!g.errors[failed])
    ++failed;
  const auto& cause = g.errors[failed];
  auto code = gpumem_code(cause).value_or(gpumem_errc::device_failure);
  const char* what = kind == transition_kind::sleep ? "sleep_all" : "wake_all";
  auto message = std::string{what} + ": " + device_name(g.devices[failed]) + " failed (" +
                 describe(cause) + ")";
  std::vector<std::size_t> succeeded;
  for (std::size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i] && find_device(self->state, g.devices[i]))
      succeeded.push_back(i);
  if (succeeded.empty()) {
    rp.deliver(make_error(code, message + "; nothing to roll back"));
    return;
  }
  auto left = std::make_shared<std::size_t>(succeeded.size());
  auto rolled = std::make_shared<std::string>();
  for (auto i : succeeded) {
    auto device = g.devices[i];
    undo(self, kind, device, g.values[i]->tags,
         [=](const caf::error& e) mutable {
           if (e)
             spdlog::error("balancer: {} roll-back failed on device {}: {}", what, device,
                           describe(e));
           *rolled += (rolled->empty() ? "" : ", ") + device_name(device) +
                      (e ? " NOT rolled back (" + describe(e) + ")" : " rolled back");
           if (--*left == 0)
             rp.deliver(make_error(code, message + "; " + *rolled));
         });
  }
}

template <class Arg>
caf::result<std::vector<transition_report>> on_transition_all(balancer_pointer self,
                                                              transition_kind kind, Arg arg) {
  auto& st = self->state;
  if (st.devices.empty())
    return make_error(gpumem_errc::no_device_available, "the balancer has no devices");
  auto rp = self->make_response_promise<std::vector<transition_report>>();
  auto done = [self, kind, rp, arg](gathering<transition_report>& g) mutable {
    for (auto id : g.devices)
      refresh(self, id);
    if (first_error(g)) {
      roll_back(self, kind, g, rp);
      return;
    }
    std::vector<transition_report> reports;
    for (std::size_t i = 0; i < g.values.size(); ++i) {
      if constexpr (std::is_same_v<Arg, sleep_policy>)
        self->state.last_sleep[g.devices[i]] = arg;
      reports.push_back(std::move(*g.values[i]));
    }
    rp.deliver(std::move(reports));
  };
  auto late = [self, kind](std::int32_t device, transition_report& report) {
    undo_late(self, kind, device, report);
  };
  if constexpr (std::is_same_v<Arg, sleep_policy>)
    gather<transition_report>(self, all_devices(st), "sleep", deadline_kind::transition, done,
                              late, sleep_atom::value, arg);
  else
    gather<transition_report>(self, all_devices(st), "wake", deadline_kind::transition, done,
                              late, wake_atom::value, arg);
  return rp;
}

} // namespace

caf::result<std::vector<transition_report>> on_sleep_all(balancer_pointer self,
                                                         sleep_policy policy) {
  return on_transition_all(self, transition_kind::sleep, std::move(policy));
}

caf::result<std::vector<transition_report>> on_wake_all(balancer_pointer self,
                                                        std::vector<std::string> tags) {
  return on_transition_all(self, transition_kind::wake, std::move(tags));
}

} // namespace gpumem::actors::balancing
