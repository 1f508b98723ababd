#pragma once
// A client of the day's burst: an event-based actor that allocates its KV-cache blocks
// through the balancer, frees them, and goes round again, timing every answer; at the
// end it adds its numbers to the burst's totals and tells whoever waits for it.

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../step_timing.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::tool::demo {

/// What every client of the burst adds up to.
struct burst_totals {
  std::mutex mutex;
  std::vector<double> latencies_us;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  std::vector<std::uint64_t> per_device;
};

struct client_state {
  messages::balancer_actor balancer;
  caf::actor report_to;  // gets an int32 when the client is done
  std::shared_ptr<burst_totals> totals;
  std::chrono::milliseconds timeout{30000};
  std::size_t block_size = 2 * MiB;
  int rounds_left = 0;
  int blocks = 0;
  int attempts = 0;
  std::vector<messages::region_handle> held;
  std::vector<double> latencies_us;
  std::uint64_t errors = 0;
  std::string first_error;
  std::vector<std::uint64_t> per_device;

  void answered(clock_type::time_point start) { latencies_us.push_back(seconds_since(start) * 1e6); }
  void failed(caf::event_based_actor* self, const caf::error& e) {
    if (errors++ == 0)
      first_error = self->system().render(e);
  }
};

caf::behavior burst_client(caf::event_based_actor* self, std::shared_ptr<client_state> st);

/// The burst in numbers, for the log and the report.
struct burst_summary {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  double mean_us = 0, p50_us = 0, p99_us = 0, max_us = 0;
  std::string spread;  // allocations per device
};

burst_summary summarize(burst_totals& totals);

} // namespace gpumem::tool::demo
