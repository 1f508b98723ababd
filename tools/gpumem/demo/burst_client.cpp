#include "burst_client.hpp"

#include <algorithm>
#include <utility>

namespace gpumem::tool::demo {

using namespace gpumem::messages;

namespace {

void client_round(caf::event_based_actor* self, std::shared_ptr<client_state> st);

void client_free(caf::event_based_actor* self, std::shared_ptr<client_state> st) {
  if (st->held.empty()) {
    client_round(self, st);
    return;
  }
  auto handle = st->held.back();
  st->held.pop_back();
  auto start = clock_type::now();
  self->request(st->balancer, caf::duration{st->timeout}, deallocate_atom::value, handle)
    .then(
      [self, st, start](ok_atom) {
        st->answered(start);
        client_free(self, st);
      },
      [self, st, start](caf::error& e) {
        st->answered(start);
        st->failed(self, e);
        client_free(self, st);
      });
}

void client_allocate(caf::event_based_actor* self, std::shared_ptr<client_state> st) {
  if (st->attempts == st->blocks) {
    st->attempts = 0;
    client_free(self, st);
    return;
  }
  ++st->attempts;
  allocation_request request;
  request.size = st->block_size;
  request.tag = "kv_cache";
  auto start = clock_type::now();
  self->request(st->balancer, caf::duration{st->timeout}, allocate_atom::value, request)
    .then(
      [self, st, start](region_handle& handle) {
        st->answered(start);
        auto d = static_cast<std::size_t>(std::max(handle.device, 0));
        if (st->per_device.size() <= d)
          st->per_device.resize(d + 1);
        ++st->per_device[d];
        st->held.push_back(std::move(handle));
        client_allocate(self, st);
      },
      [self, st, start](caf::error& e) {
        st->answered(start);
        st->failed(self, e);
        client_allocate(self, st);
      });
}

void client_round(caf::event_based_actor* self, std::shared_ptr<client_state> st) {
  if (st->rounds_left == 0) {
    {
      std::lock_guard<std::mutex> guard(st->totals->mutex);
      auto& t = *st->totals;
      t.latencies_us.insert(t.latencies_us.end(), st->latencies_us.begin(), st->latencies_us.end());
      t.requests += st->latencies_us.size();
      t.errors += st->errors;
      if (t.first_error.empty())
        t.first_error = st->first_error;
      if (t.per_device.size() < st->per_device.size())
        t.per_device.resize(st->per_device.size());
      for (std::size_t d = 0; d < st->per_device.size(); ++d)
        t.per_device[d] += st->per_device[d];
    }
    self->send(st->report_to, std::int32_t{1});
    self->quit();
    return;
  }
  --st->rounds_left;
  client_allocate(self, st);
}

} // namespace

caf::behavior burst_client(caf::event_based_actor* self, std::shared_ptr<client_state> st) {
  client_round(self, st);
  return {[](std::int32_t) {}};  // only responses arrive
}

burst_summary summarize(burst_totals& totals) {
  // Clients that missed the deadline may still be adding theirs.
  std::lock_guard<std::mutex> guard(totals.mutex);
  burst_summary s;
  s.requests = totals.requests;
  s.errors = totals.errors;
  s.first_error = totals.first_error;
  auto& lat = totals.latencies_us;
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  double mean = 0;
  for (auto x : lat)
    mean += x;
  s.mean_us = lat.empty() ? 0 : mean / static_cast<double>(lat.size());
  s.p50_us = pct(0.50);
  s.p99_us = pct(0.99);
  s.max_us = lat.empty() ? 0.0 : lat.back();
  for (std::size_t d = 0; d < totals.per_device.size(); ++d)
    s.spread += (d ? ", " : "") + std::string("device ") + std::to_string(d) + ": "
                + std::to_string(totals.per_device[d]);
  return s;
}

} // namespace gpumem::tool::demo
