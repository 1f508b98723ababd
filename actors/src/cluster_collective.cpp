// Collective sleep and wake over nodes, all or nothing, in the devices' two phases
// (docs/state-machine.md): every device of every node named prepares (a sleep backs up
// and unmaps nothing; a wake maps and restores, keeping its backups); only when all have
// prepared does each commit. A failure in phase one, or a node lost during it, aborts
// every device at once, as it was. A commit that fails leaves its device to abort when
// its hold runs out; the devices that did commit a sleep are woken again, so that a
// failed collective sleep leaves every node awake.

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "cluster_internal.hpp"

namespace gpumem::actors::clustering {

using namespace messages;

/// One node's part: its allocators as they were when the collective began.
struct collective_part {
  std::string node;
  std::vector<device_allocator_actor> allocators;
  std::vector<std::optional<transition_report>> reports;  // by device
};

struct collective_run {
  std::uint64_t transaction = 0;
  collective_request request;
  std::vector<collective_part> parts;
  std::chrono::milliseconds deadline{0};  // of each prepare and commit
  enum class phase { prepare, commit, undo, done } at = phase::prepare;
  std::size_t pending = 0;
  caf::error failed;  // the first failure, naming its node
  caf::typed_response_promise<std::vector<node_transition>> rp;
};

namespace {

using run_ptr = std::shared_ptr<collective_run>;

const char* name(const collective_run& run) {
  return run.request.kind == transition_kind::sleep ? "collective sleep" : "collective wake";
}

void finish(cluster_pointer self, const run_ptr& run, caf::error e) {
  run->at = collective_run::phase::done;
  self->state.collectives.erase(run->transaction);
  if (e) {
    spdlog::warn("cluster: {} (transaction {}) failed: {}", name(*run), run->transaction,
                 self->system().render(e));
    run->rp.deliver(std::move(e));
    return;
  }
  std::vector<node_transition> out;
  for (auto& p : run->parts) {
    node_transition t{p.node, {}};
    for (auto& r : p.reports)
      t.devices.push_back(std::move(*r));
    out.push_back(std::move(t));
  }
  run->rp.deliver(std::move(out));
}

/// Every device of every part abandons the transaction (an id a device does not hold
/// is already as it was there).
void abort_all(const run_ptr& run) {
  for (const auto& p : run->parts)
    for (const auto& a : p.allocators)
      caf::anon_send(a, abort_atom::value, run->transaction);
}

caf::error failure_of(cluster_pointer self, const std::string& node, const caf::error& e) {
  if (auto* m = find_member(self->state, node))
    return from_node(*m, e);
  return make_error(gpumem_errc::node_unreachable, "node " + node + ": it left the cluster");
}

/// Phase one failed: every device aborts, and the answer names the node and the cause.
void roll_back(cluster_pointer self, const run_ptr& run, caf::error cause) {
  abort_all(run);
  auto code = gpumem_code(cause).value_or(gpumem_errc::node_unreachable);
  finish(self, run,
         make_error(code, error_message(cause) + "; every node was left as it was"));
}

/// A sleep's commit failed on some device: the devices that committed are woken again.
void undo_sleep(cluster_pointer self, const run_ptr& run) {
  run->at = collective_run::phase::undo;
  run->pending = 0;
  for (auto& p : run->parts)
    for (std::size_t d = 0; d < p.allocators.size(); ++d)
      if (p.reports[d] && !p.reports[d]->tags.empty()) {
        ++run->pending;
        auto node = p.node;
        auto done = [self, run, node](std::optional<caf::error> e) {
          if (e)
            spdlog::error("cluster: could not wake node {} again after a failed collective "
                          "sleep: {}", node, self->system().render(*e));
          if (--run->pending == 0)
            finish(self, run,
                   make_error(gpumem_errc::rolled_back,
                              error_message(run->failed)
                                + "; the nodes that had slept were woken again"));
        };
        self->request(p.allocators[d], run->deadline, wake_atom::value, p.reports[d]->tags)
          .then([done](transition_report&) mutable { done(std::nullopt); },
                [done](caf::error& e) mutable { done(e); });
      }
  if (run->pending == 0)
    finish(self, run, make_error(gpumem_errc::rolled_back, error_message(run->failed)));
}

void commit_all(cluster_pointer self, const run_ptr& run) {
  run->at = collective_run::phase::commit;
  for (auto& p : run->parts)
    std::fill(p.reports.begin(), p.reports.end(), std::nullopt);
  run->pending = 0;
  for (auto& p : run->parts)
    run->pending += p.allocators.size();
  if (run->pending == 0) {
    finish(self, run, {});
    return;
  }
  for (std::size_t i = 0; i < run->parts.size(); ++i)
    for (std::size_t d = 0; d < run->parts[i].allocators.size(); ++d) {
      auto settle = [self, run]() {
        if (--run->pending != 0)
          return;
        if (!run->failed)
          finish(self, run, {});
        else if (run->request.kind == transition_kind::sleep)
          undo_sleep(self, run);
        else
          finish(self, run, make_error(gpumem_errc::rolled_back,
                                       error_message(run->failed)
                                         + "; the other nodes are awake"));
      };
      self->request(run->parts[i].allocators[d], run->deadline, commit_atom::value,
                    run->transaction)
        .then(
          [run, i, d, settle](transition_report& r) mutable {
            run->parts[i].reports[d] = std::move(r);
            settle();
          },
          [self, run, i, settle](caf::error& e) mutable {
            if (!run->failed)
              run->failed = failure_of(self, run->parts[i].node, e);
            settle();
          });
    }
}

} // namespace

caf::result<std::vector<node_transition>> on_collective(cluster_pointer self,
                                                        collective_request request) {
  auto& st = self->state;
  if (request.kind != transition_kind::sleep && request.kind != transition_kind::wake)
    return make_error(gpumem_errc::invalid_config, "a collective is a sleep or a wake");
  std::vector<std::string> names = request.nodes;
  if (names.empty())
    for (const auto& m : st.members)
      names.push_back(m.address);
  if (names.empty())
    return make_error(gpumem_errc::invalid_config, "the cluster has no node");
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size())
    return make_error(gpumem_errc::invalid_config, "a node is named twice");
  auto run = std::make_shared<collective_run>();
  run->deadline = st.options.deadline;
  for (const auto& n : names) {
    auto* m = find_member(st, n);
    if (!m)
      return make_error(gpumem_errc::invalid_config, "node " + n + " is not in the cluster");
    if (m->health != node_health::up)
      return unreachable(*m, "it is " + std::string(to_string(m->health)) + " (" + m->cause
                               + "); nothing was done");
    run->parts.push_back({m->address, m->allocators, {}});
    run->parts.back().reports.resize(m->allocators.size());
    // A node's transitions may take as long as its own deadline, and a quarter more.
    run->deadline = std::max(run->deadline,
                             std::chrono::milliseconds{m->info.transition_timeout_ms * 5 / 4});
  }
  run->transaction = ++st.next_transaction;
  run->request = std::move(request);
  run->rp = self->make_response_promise<std::vector<node_transition>>();
  st.collectives.emplace(run->transaction, run);
  // Held past every prepare's deadline, with room to commit; then a device aborts alone.
  const auto hold = static_cast<std::uint64_t>(3 * run->deadline.count());
  for (auto& p : run->parts)
    run->pending += p.allocators.size();
  if (run->pending == 0) {
    finish(self, run, {});
    return run->rp;
  }
  for (std::size_t i = 0; i < run->parts.size(); ++i)
    for (std::size_t d = 0; d < run->parts[i].allocators.size(); ++d) {
      auto on_report = [self, run, i, d](transition_report& r) mutable {
        if (run->at != collective_run::phase::prepare)
          return;  // failed already: this device was told to abort
        run->parts[i].reports[d] = std::move(r);
        if (--run->pending == 0)
          commit_all(self, run);
      };
      auto on_error = [self, run, i](caf::error& e) mutable {
        if (run->at != collective_run::phase::prepare)
          return;
        roll_back(self, run, failure_of(self, run->parts[i].node, e));
      };
      const auto& a = run->parts[i].allocators[d];
      const auto& r = run->request;
      if (r.kind == transition_kind::sleep)
        self->request(a, run->deadline, prepare_sleep_atom::value, r.policy, run->transaction, hold)
          .then(on_report, on_error);
      else
        self->request(a, run->deadline, prepare_wake_atom::value, r.tags, run->transaction, hold)
          .then(on_report, on_error);
    }
  return run->rp;
}

void fail_collectives_of(cluster_pointer self, const std::string& address,
                         const std::string& cause) {
  std::vector<run_ptr> hit;
  for (auto& [id, run] : self->state.collectives)
    if (run->at == collective_run::phase::prepare
        && std::any_of(run->parts.begin(), run->parts.end(),
                       [&](const collective_part& p) { return p.node == address; }))
      hit.push_back(run);
  for (auto& run : hit)
    roll_back(self, run,
              make_error(gpumem_errc::node_unreachable, "node " + address + ": " + cause));
}

} // namespace gpumem::actors::clustering
