// A pressure subscriber: hear when a device's memory use crosses the warning or
// critical threshold, as a serving framework would to shed load.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/register.hpp"

using namespace gpumem;

int main() {
  caf::actor_system_config cfg;
  messages::register_protocol(cfg);
  caf::actor_system sys{cfg};
  actors::runtime_config config;
  config.backend = actors::backend_kind::host;
  config.host.capacities = {256 * MiB};
  config.pressure.period = std::chrono::milliseconds{20};
  config.log_level = spdlog::level::warn;
  auto rt = actors::runtime::create(sys, config);
  if (!rt)
    return 1;
  client::blocking_client c{client::local_endpoint(sys, *rt.value())};

  std::atomic<int> warnings{0};
  auto sub = c.subscribe([&](const messages::pressure_event& e) {  // on a CAF thread
    std::printf("device %d: %s -> %s, %llu of %llu B free\n", e.device, to_string(e.previous),
                to_string(e.level), static_cast<unsigned long long>(e.available_bytes),
                static_cast<unsigned long long>(e.total_bytes));
    if (e.level != messages::pressure_level::normal)
      ++warnings;
  });
  if (!sub)
    return 1;

  auto big = c.allocate(216 * MiB, "activations");  // about 84% in use: warning
  if (!big)
    return 1;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (warnings == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  (void)c.deallocate(*big);
  sub->cancel();
  return warnings > 0 ? 0 : 1;
}
