#pragma once
// A runtime on CAF's real scheduler (host backend, two emulated devices of 256 MiB)
// and the endpoint clients use to reach it; plus an endpoint whose balancer and
// monitor never answer, as a stuck or unreachable node would not.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/client/endpoint.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::test {

inline actors::runtime_config client_test_config() {
  actors::runtime_config config;
  config.backend = actors::backend_kind::host;
  config.host.capacities = {256 * MiB, 256 * MiB};
  config.host.granularity = 2 * MiB;
  config.pressure.period = std::chrono::milliseconds{20};
  return config;
}

inline caf::actor_system_config& with_protocol(caf::actor_system_config& cfg) {
  messages::register_protocol(cfg);
  return cfg;
}

/// Keeps every request and never answers. A class: CAF 0.17.6 spawns a function
/// without arguments through a null pointer it dereferences (UBSan reports it).
class silent_actor final : public caf::event_based_actor {
public:
  using caf::event_based_actor::event_based_actor;

  caf::behavior make_behavior() override {
    set_default_handler([this](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      kept_.push_back(make_response_promise());
      return caf::delegated<caf::message>{};
    });
    return {[](std::int8_t) {}};
  }

  // The promises name this actor: dropped at exit, or they would keep it alive.
  void on_exit() override { kept_.clear(); }

private:
  std::vector<caf::response_promise> kept_;
};

struct client_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::unique_ptr<actors::runtime> rt;

  explicit client_fixture(const actors::runtime_config& config = client_test_config())
    : sys(with_protocol(cfg)) {
    auto made = actors::runtime::create(sys, config);
    if (!made)
      FAIL("runtime::create: " << made.error().to_string());
    rt = std::move(made).value();
  }
  ~client_fixture() { rt.reset(); }

  client::endpoint endpoint() { return client::local_endpoint(sys, *rt); }

  /// An endpoint whose balancer, monitor and allocators keep every request and never
  /// answer.
  client::endpoint silent_endpoint() {
    auto silent = sys.spawn<silent_actor>();
    silent_actors.push_back(silent);
    client::endpoint e;
    e.system = &sys;
    e.balancer = caf::actor_cast<messages::balancer_actor>(silent);
    e.monitor = caf::actor_cast<messages::pressure_monitor_actor>(silent);
    e.allocators = {caf::actor_cast<messages::device_allocator_actor>(silent)};
    e.request_timeout = std::chrono::milliseconds{200};
    e.transition_timeout = std::chrono::milliseconds{200};
    return e;
  }
  std::vector<caf::actor> silent_actors;

  /// Stops the silent actors (before ~actor_system waits for them).
  void stop_silent() {
    for (auto& a : silent_actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    silent_actors.clear();
  }
};

/// Fills `size` bytes at `address` with a pattern that depends on `seed`.
inline void fill_pattern(std::uint64_t address, std::uint64_t size, std::uint8_t seed) {
  auto* p = reinterpret_cast<std::uint8_t*>(address);
  for (std::uint64_t i = 0; i < size; ++i)
    p[i] = static_cast<std::uint8_t>(seed + i * 31 + (i >> 12));
}

inline bool has_pattern(std::uint64_t address, std::uint64_t size, std::uint8_t seed) {
  auto* p = reinterpret_cast<const std::uint8_t*>(address);
  for (std::uint64_t i = 0; i < size; ++i)
    if (p[i] != static_cast<std::uint8_t>(seed + i * 31 + (i >> 12)))
      return false;
  return true;
}

} // namespace gpumem::test
