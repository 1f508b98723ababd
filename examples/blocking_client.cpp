// A blocking client over a runtime in the same process: what a thread-pool server
// calls. Errors are values; every call has a deadline; tag scopes tag allocations.

#include <cstdio>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/scheduler.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/messages/register.hpp"

using namespace gpumem;

int main() {
  caf::actor_system_config cfg;
  messages::register_protocol(cfg);
  actors::use_prompt_wakeups(cfg);  // a request from outside CAF is not left waiting
  caf::actor_system sys{cfg};
  actors::runtime_config config;
  config.backend = actors::backend_kind::host;
  config.log_level = spdlog::level::warn;
  auto rt = actors::runtime::create(sys, config);
  if (!rt)
    return 1;

  client::blocking_client c{client::local_endpoint(sys, *rt.value())};

  // Four workers, each with its own tag scope.
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&c, w] {
      auto scope = c.scope(w % 2 ? "kv_cache" : "activations");
      for (int i = 0; i < 100; ++i) {
        auto region = c.allocate(64 * 1024);
        if (!region) {
          std::fprintf(stderr, "%s\n", region.error().to_string().c_str());
          return;
        }
        (void)c.deallocate(*region);
      }
    });
  for (auto& t : workers)
    t.join();

  auto too_big = c.allocate(std::uint64_t{1} << 50);  // an error value, not an exception
  std::printf("asking for 1 PiB: %s\n", too_big.error().to_string().c_str());

  auto stats = c.statistics();
  if (!stats)
    return 1;
  std::printf("%llu allocations on %zu devices, %lld B still allocated\n",
              static_cast<unsigned long long>(stats->total.total.allocations),
              stats->devices.size(),
              static_cast<long long>(stats->total.total.allocated.current));
  return stats->total.total.allocations == 400 ? 0 : 1;
}
