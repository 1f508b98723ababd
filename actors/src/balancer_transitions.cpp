// sleep_all and wake_all: every device at once, in two phases (docs/state-machine.md).
// Phase one asks every device to prepare (a sleep takes its backups and unmaps
// nothing; a wake maps and restores, keeping its backups): the part that can fail,
// losing nothing. Only when every device has prepared does each commit (release and
// discard; drop the backups); when one fails, every device aborts, as it was.

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

const char* operation(transition_kind kind) {
  return kind == transition_kind::sleep ? "sleep_all" : "wake_all";
}

/// How long a device holds a prepared transaction before aborting on its own (the
/// balancer may be gone): past every device's prepare deadline, with room to commit.
std::uint64_t hold_ms(const balancer_state& st) {
  return static_cast<std::uint64_t>(2 * st.options.transition_timeout.count());
}

/// The devices of a gathering that are still routed to.
targets present(balancer_pointer self, const std::vector<std::int32_t>& devices) {
  targets result;
  for (auto id : devices)
    if (auto* d = find_device(self->state, id))
      result.emplace_back(id, d->handle);
  return result;
}

std::string list(const std::vector<std::string>& names) {
  std::string result;
  for (const auto& n : names)
    result += (result.empty() ? "" : ", ") + n;
  return result;
}

/// A prepare answered after its deadline: the client was told the operation failed
/// and the others aborted, so this device aborts too (it may have done so already).
void abort_late(balancer_pointer self, std::int32_t device, std::uint64_t transaction) {
  spdlog::warn("balancer: device {} prepared transaction {} after the deadline; aborting it",
               device, transaction);
  auto* d = find_device(self->state, device);
  if (!d)
    return;
  ask<ok_atom>(
    self, device, d->handle, "abort", deadline_kind::transition, [](ok_atom) {},
    [device, transaction](caf::error e) {
      spdlog::error("balancer: aborting the late transaction {} of device {} failed: {}; "
                    "it aborts on its own when its hold runs out",
                    transaction, device, describe(e));
    },
    ignore_late{}, abort_atom::value, transaction);
}

/// Phase one failed on some device: every device aborts. The answer is the first
/// failing device's own code; its message says what each device is now, and says
/// "as it was" only of devices whose abort was confirmed.
void abort_all(balancer_pointer self, transition_kind kind, std::uint64_t transaction,
               const gathering<transition_report>& g, reports_promise rp) {
  std::size_t failed = 0;
  while (!g.errors[failed])
    ++failed;
  const auto& cause = g.errors[failed];
  auto code = gpumem_code(cause).value_or(gpumem_errc::device_failure);
  auto message = std::string{operation(kind)} + ": " + device_name(g.devices[failed]) +
                 " failed (" + describe(cause) + ")";
  auto to = present(self, g.devices);
  auto hold = hold_ms(self->state);
  auto done = [rp, code, message, hold](gathering<ok_atom>& a) mutable {
    std::vector<std::string> aborted, unsure;
    for (std::size_t i = 0; i < a.devices.size(); ++i) {
      if (a.values[i])
        aborted.push_back(device_name(a.devices[i]));
      else
        unsure.push_back(device_name(a.devices[i]) + " (" + describe(a.errors[i]) + ")");
    }
    if (unsure.empty()) {
      rp.deliver(make_error(code, message + "; aborted everywhere, nothing was released or "
                                            "discarded: every device is as it was"));
      return;
    }
    auto text = message + "; the abort did not reach " + list(unsure) +
                ", which aborts on its own when its hold of " + std::to_string(hold) +
                " ms runs out, losing nothing";
    if (!aborted.empty())
      text += "; " + list(aborted) + " aborted and " +
              (aborted.size() == 1 ? "is" : "are") + " as before";
    rp.deliver(make_error(code, std::move(text)));
  };
  // An abort of a wake unmaps, a commit of a sleep unmaps and releases: as long as
  // a transition may take, not a request.
  gather<ok_atom>(self, to, "abort", deadline_kind::transition, done,
                  [](std::int32_t, ok_atom&) {}, abort_atom::value, transaction);
}

/// Every device prepared: each commits. A device that cannot (its hold ran out, it
/// left) is named with what became of it.
void commit_all(balancer_pointer self, transition_kind kind, std::uint64_t transaction,
                const std::vector<std::int32_t>& devices, reports_promise rp) {
  auto done = [self, kind, rp](gathering<transition_report>& g) mutable {
    for (auto id : g.devices)
      refresh(self, id);
    if (auto* e = first_error(g)) {
      std::vector<std::string> committed, not_committed;
      for (std::size_t i = 0; i < g.devices.size(); ++i) {
        if (g.values[i])
          committed.push_back(device_name(g.devices[i]));
        else
          not_committed.push_back(device_name(g.devices[i]) + " (" +
                                  describe(g.errors[i]) + ")");
      }
      auto code = gpumem_code(*e).value_or(gpumem_errc::device_failure);
      rp.deliver(make_error(
        code, std::string{operation(kind)} + ": every device prepared, but " +
                list(not_committed) + " did not commit" +
                (committed.empty() ? "" : "; committed on " + list(committed))));
      return;
    }
    std::vector<transition_report> reports;
    for (auto& v : g.values)
      reports.push_back(std::move(*v));
    rp.deliver(std::move(reports));
  };
  auto late = [transaction](std::int32_t device, transition_report&) {
    spdlog::warn("balancer: device {} committed transaction {} after the deadline", device,
                 transaction);
  };
  gather<transition_report>(self, present(self, devices), "commit", deadline_kind::transition,
                            done, late, commit_atom::value, transaction);
}

template <class Arg>
caf::result<std::vector<transition_report>> on_transition_all(balancer_pointer self,
                                                              transition_kind kind, Arg arg) {
  auto& st = self->state;
  if (st.devices.empty())
    return make_error(gpumem_errc::no_device_available, "the balancer has no devices");
  auto rp = self->make_response_promise<std::vector<transition_report>>();
  auto transaction = ++st.next_transaction;
  auto done = [self, kind, transaction, rp](gathering<transition_report>& g) mutable {
    if (first_error(g)) {
      for (auto id : g.devices)
        refresh(self, id);
      abort_all(self, kind, transaction, g, rp);
      return;
    }
    commit_all(self, kind, transaction, g.devices, rp);
  };
  auto late = [self, transaction](std::int32_t device, transition_report&) {
    abort_late(self, device, transaction);
  };
  auto hold = hold_ms(st);
  if constexpr (std::is_same_v<Arg, sleep_policy>)
    gather<transition_report>(self, all_devices(st), "prepare sleep", deadline_kind::transition,
                              done, late, prepare_sleep_atom::value, arg, transaction, hold);
  else
    gather<transition_report>(self, all_devices(st), "prepare wake", deadline_kind::transition,
                              done, late, prepare_wake_atom::value, arg, transaction, hold);
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
