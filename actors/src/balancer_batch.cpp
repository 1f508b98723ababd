// The balancer's batches: a batch allocation is routed request by request and sent as
// one batch per device, all or nothing across devices; a batch free is grouped by
// device the same way.

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

/// One device's part of a batch: which requests of the batch it got.
struct batch_part {
  std::int32_t device = 0;
  std::vector<std::size_t> indices;
  std::uint64_t bytes = 0;
};

struct batch_progress {
  caf::typed_response_promise<batch_allocation_response> rp;
  std::size_t size = 0;
  std::vector<batch_part> parts;
  std::vector<std::optional<std::vector<region_handle>>> regions;  // per part
  std::vector<caf::error> errors;                                  // per part
  std::size_t pending = 0;
};

std::string list_of(const std::vector<std::size_t>& indices) {
  std::string result;
  for (auto i : indices)
    result += (result.empty() ? "" : ", ") + std::to_string(i);
  return result;
}

/// Every part answered: deliver, or free the parts that succeeded and answer the first
/// failing part's cause once the frees are done.
void finish_batch(balancer_pointer self, std::shared_ptr<batch_progress> b) {
  std::size_t failed = b->parts.size();
  for (std::size_t p = 0; p < b->parts.size(); ++p)
    if (b->errors[p] && (failed == b->parts.size() ||
                         b->parts[p].indices.front() < b->parts[failed].indices.front()))
      failed = p;
  if (failed == b->parts.size()) {
    batch_allocation_response response;
    response.regions.resize(b->size);
    for (std::size_t p = 0; p < b->parts.size(); ++p)
      for (std::size_t k = 0; k < b->parts[p].indices.size(); ++k)
        response.regions[b->parts[p].indices[k]] = std::move((*b->regions[p])[k]);
    b->rp.deliver(std::move(response));
    return;
  }
  const auto& part = b->parts[failed];
  std::size_t undone = 0;
  for (auto& r : b->regions)
    if (r)
      undone += r->size();
  auto code = gpumem_code(b->errors[failed]).value_or(gpumem_errc::device_failure);
  auto answer = std::make_shared<caf::error>(make_error(
    code, "batch of " + std::to_string(b->size) + ": " + device_name(part.device) +
            " refused its request(s) " + list_of(part.indices) + " (" +
            describe(b->errors[failed]) + "); " + std::to_string(undone) +
            " allocation(s) undone on the other devices"));
  auto left = std::make_shared<std::size_t>(0);
  for (auto& r : b->regions)
    if (r && !r->empty())
      ++*left;
  if (*left == 0) {
    b->rp.deliver(*answer);
    return;
  }
  for (std::size_t p = 0; p < b->parts.size(); ++p)
    if (b->regions[p] && !b->regions[p]->empty())
      free_regions(self, b->parts[p].device, std::move(*b->regions[p]), "batch roll-back",
                   [b, answer, left] {
                     if (--*left == 0)
                       b->rp.deliver(*answer);
                   });
}

} // namespace

/// Frees regions (of one device) nobody will hold; logs what could not be freed.
void free_regions(balancer_pointer self, std::int32_t device, std::vector<region_handle> regions,
                  const char* why, std::function<void()> then) {
  auto* d = find_device(self->state, device);
  if (!d) {
    spdlog::error("balancer: {}: device {} left; its {} region(s) stay", why, device,
                  regions.size());
    then();
    return;
  }
  auto count = regions.size();
  ask<ok_atom>(
    self, device, d->handle, why, deadline_kind::request, [then](ok_atom) { then(); },
    [then, device, count, why](caf::error e) {
      spdlog::error("balancer: {}: device {} could not free {} region(s): {}", why, device,
                    count, describe(e));
      then();
    },
    ignore_late{}, batch_deallocate_atom::value, batch_deallocation_request{std::move(regions)});
}

caf::result<batch_allocation_response> on_batch(balancer_pointer self,
                                                batch_allocation_request batch) {
  auto& st = self->state;
  if (batch.requests.empty())
    return batch_allocation_response{};
  // Route every request first: a request no device can take refuses the whole batch
  // before anything is allocated. Pending bytes grow as we go, so least-loaded spreads
  // a large batch.
  std::map<std::int32_t, batch_part> by_device;
  auto undo_pending = [&] {
    for (auto& [device, part] : by_device)
      settle_pending(st, device, part.bytes);
  };
  for (std::size_t i = 0; i < batch.requests.size(); ++i) {
    auto chosen = route(st, batch.requests[i]);
    if (!chosen) {
      undo_pending();
      st.allocations_rejected += batch.requests.size();
      auto code = gpumem_code(chosen.error()).value_or(gpumem_errc::no_device_available);
      return make_error(code, "batch request " + std::to_string(i) + " of " +
                                std::to_string(batch.requests.size()) +
                                " cannot be routed (" + describe(chosen.error()) +
                                "); nothing allocated");
    }
    auto& part = by_device[*chosen];
    part.device = *chosen;
    part.indices.push_back(i);
    part.bytes += batch.requests[i].size;
    st.devices.at(*chosen).pending_bytes += batch.requests[i].size;
  }
  st.allocations_routed += batch.requests.size();
  auto b = std::make_shared<batch_progress>();
  b->rp = self->make_response_promise<batch_allocation_response>();
  b->size = batch.requests.size();
  for (auto& [device, part] : by_device)
    b->parts.push_back(std::move(part));
  b->regions.resize(b->parts.size());
  b->errors.resize(b->parts.size());
  b->pending = b->parts.size();
  for (std::size_t p = 0; p < b->parts.size(); ++p) {
    const auto& part = b->parts[p];
    batch_allocation_request sub;
    sub.requests.reserve(part.indices.size());
    for (auto i : part.indices)
      sub.requests.push_back(std::move(batch.requests[i]));
    auto device = part.device;
    auto bytes = part.bytes;
    auto settle = [self, device, bytes] { settle_pending(self->state, device, bytes); };
    auto one_done = [self, b] {
      if (--b->pending == 0)
        finish_batch(self, b);
    };
    ask<batch_allocation_response>(
      self, device, st.devices.at(device).handle, "batch_allocate", deadline_kind::request,
      [self, b, p, settle, one_done, device](batch_allocation_response& r) {
        settle();
        std::uint64_t taken = 0;
        for (auto& h : r.regions)
          taken += h.size;
        note_allocated(self->state, device, taken);
        b->regions[p] = std::move(r.regions);
        one_done();
      },
      [self, b, p, settle, one_done](caf::error e) {
        settle();
        self->state.allocations_rejected += b->parts[p].indices.size();
        b->errors[p] = std::move(e);
        one_done();
      },
      [self, settle, device](batch_allocation_response& r) {
        settle();
        free_regions(self, device, std::move(r.regions), "late batch allocation");
      },
      batch_allocate_atom::value, std::move(sub));
  }
  return b->rp;
}

caf::result<ok_atom> on_batch_free(balancer_pointer self, batch_deallocation_request batch) {
  auto& st = self->state;
  for (auto& h : batch.regions)
    if (!find_device(st, h.device))
      return make_error(gpumem_errc::unknown_device,
                        "batch free: region " + std::to_string(h.region) + " is on " +
                          device_name(h.device) +
                          ", which this balancer does not route to; nothing freed");
  std::map<std::int32_t, std::vector<region_handle>> by_device;
  bool one_device = std::all_of(batch.regions.begin(), batch.regions.end(),
                                [&](const region_handle& h) {
                                  return h.device == batch.regions.front().device;
                                });
  if (one_device && !batch.regions.empty()) {  // the common case: passed on whole
    auto device = batch.regions.front().device;
    by_device[device] = std::move(batch.regions);
  } else {
    for (auto& h : batch.regions)
      by_device[h.device].push_back(std::move(h));
  }
  if (by_device.empty())
    return ok_atom::value;
  struct progress {
    caf::typed_response_promise<ok_atom> rp;
    std::size_t pending = 0;
    std::string freed, failed;
    caf::error first;
  };
  auto g = std::make_shared<progress>();
  g->rp = self->make_response_promise<ok_atom>();
  g->pending = by_device.size();
  for (auto& [device, regions] : by_device) {
    auto count = regions.size();
    auto one_done = [g, device = device, count](caf::error e) {
      auto& list = e ? g->failed : g->freed;
      list += (list.empty() ? "" : ", ") + device_name(device) + " (" + std::to_string(count) +
              " region(s))";
      if (e && !g->first)
        g->first = make_error(gpumem_code(e).value_or(gpumem_errc::device_failure),
                              describe(e));
      if (--g->pending > 0)
        return;
      if (!g->first) {
        g->rp.deliver(ok_atom::value);
        return;
      }
      g->rp.deliver(make_error(gpumem_code(g->first).value_or(gpumem_errc::device_failure),
                               "batch free: " + g->failed + " freed nothing (" +
                                 error_message(g->first) + ")" +
                                 (g->freed.empty() ? "" : "; freed: " + g->freed)));
    };
    ask<ok_atom>(
      self, device, st.devices.at(device).handle, "batch_deallocate", deadline_kind::request,
      [one_done](ok_atom) { one_done(caf::error{}); },
      [one_done](caf::error e) { one_done(std::move(e)); }, ignore_late{},
      batch_deallocate_atom::value, batch_deallocation_request{std::move(regions)});
  }
  return g->rp;
}

} // namespace gpumem::actors::balancing
