// The balancer's single-region requests: allocate (routed, tried on another device after
// an out_of_memory, freed again when its answer comes too late), deallocate and touch.

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "balancer_internal.hpp"

namespace gpumem::actors::balancing {

using namespace messages;

namespace {

/// Frees a region whose allocation was answered with a timeout: nobody holds it.
void free_late(balancer_pointer self, const region_handle& h) {
  spdlog::warn("balancer: device {} answered an allocation after its deadline; freeing "
               "region {} ({} B)",
               h.device, h.region, h.size);
  free_regions(self, h.device, {h}, "late allocation");
}

struct allocation_attempt {
  allocation_request request;
  std::vector<std::int32_t> tried;
  caf::typed_response_promise<region_handle> rp;
};

void attempt(balancer_pointer self, std::shared_ptr<allocation_attempt> a,
             caf::error last_refusal) {
  auto& st = self->state;
  auto chosen = route(st, a->request, a->tried);
  if (!chosen) {
    ++st.allocations_rejected;
    a->rp.deliver(last_refusal ? std::move(last_refusal) : std::move(chosen.error()));
    return;
  }
  auto device = *chosen;
  auto& d = st.devices.at(device);
  d.pending_bytes += a->request.size;
  if (a->tried.empty())
    ++st.allocations_routed;
  a->tried.push_back(device);
  auto settle = [self, device, size = a->request.size] {
    settle_pending(self->state, device, size);
  };
  ask<region_handle>(
    self, device, d.handle, "allocate", deadline_kind::request,
    [self, settle, a, device](region_handle& h) {
      settle();
      note_allocated(self->state, device, h.size);
      a->rp.deliver(std::move(h));
    },
    [self, settle, a, device](caf::error e) {
      settle();
      auto& st = self->state;
      bool retry = gpumem_code(e) == gpumem_errc::out_of_memory &&
                   a->request.device_hint < 0 && a->tried.size() < st.devices.size();
      if (gpumem_code(e) == gpumem_errc::out_of_memory)
        refresh(self, device);  // its figure was too hopeful
      if (retry) {
        ++st.allocations_retried;
        spdlog::debug("balancer: device {} is out of memory for {} B; trying another",
                      device, a->request.size);
        attempt(self, a, std::move(e));
        return;
      }
      ++st.allocations_rejected;
      a->rp.deliver(std::move(e));
    },
    [self, settle](region_handle& h) {
      settle();
      free_late(self, h);
    },
    allocate_atom::value, a->request);
}

/// Sends a request about one region to handle.device.
template <class Atom>
caf::result<ok_atom> on_region(balancer_pointer self, Atom atom, const region_handle& h,
                               const char* what) {
  auto* d = find_device(self->state, h.device);
  if (!d)
    return unknown_device(h.device);
  auto rp = self->make_response_promise<ok_atom>();
  ask<ok_atom>(
    self, h.device, d->handle, what, deadline_kind::request,
    [rp](ok_atom) mutable { rp.deliver(ok_atom::value); },
    [rp](caf::error e) mutable { rp.deliver(std::move(e)); }, ignore_late{}, atom, h.region);
  return rp;
}

} // namespace

caf::result<region_handle> on_allocate(balancer_pointer self, allocation_request request) {
  auto a = std::make_shared<allocation_attempt>();
  a->request = std::move(request);
  a->rp = self->make_response_promise<region_handle>();
  attempt(self, a, caf::error{});
  return a->rp;
}

caf::result<ok_atom> on_deallocate(balancer_pointer self, const region_handle& h) {
  return on_region(self, deallocate_atom::value, h, "deallocate");
}

caf::result<ok_atom> on_touch(balancer_pointer self, const region_handle& h) {
  return on_region(self, touch_atom::value, h, "touch");
}

} // namespace gpumem::actors::balancing
