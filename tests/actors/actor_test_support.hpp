#pragma once
// What the deterministic actor tests share: emulated devices, an actor system on
// CAF's test coordinator, and a reply as a test reads it.

#include <cstddef>
#include <optional>
#include <string_view>

#include <catch2/catch.hpp>
#include <caf/all.hpp>

#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"
#include "support/wait.hpp"

namespace gpumem::test {

/// `count` emulated devices of `capacity` bytes at `granularity`.
inline cuda::host_backend_config host_devices(std::size_t count, std::size_t capacity,
                                              std::size_t granularity) {
  cuda::host_backend_config config;
  config.devices.assign(count, cuda::host_device_config{capacity, granularity, granularity});
  return config;
}

/// The protocol registered and CAF's deterministic test coordinator as scheduler.
inline caf::actor_system_config& testing_config(caf::actor_system_config& c) {
  messages::register_protocol(c);
  c.set("scheduler.policy", caf::atom("testing"));
  c.set("logger.inline-output", true);
  return c;
}

/// Allocator options for CAF's deterministic coordinator: no periodic cache check,
/// whose timer a drive() that fires every timer would fire for ever.
inline actors::device_allocator_options quiet_allocator_options() {
  actors::device_allocator_options options;
  options.cache_check_interval = std::chrono::milliseconds{0};
  return options;
}

/// A device allocator for `device` of `backend`, over a new engine with `config`
/// (device set to `device`); options.backend is set to `backend`.
inline messages::device_allocator_actor
spawn_allocator(caf::actor_system& sys, cuda::device_backend& backend, int device,
                actors::device_allocator_options options = quiet_allocator_options(),
                core::engine_config config = {}) {
  config.device = device;
  auto made = core::engine::create(backend, config);
  REQUIRE(made.ok());
  options.backend = &backend;
  return sys.spawn(actors::device_allocator, std::move(made).value(),
                   static_cast<std::int32_t>(device), std::move(options));
}

/// Runs the coordinator's jobs until none is left, without firing timers. Allocators
/// with a zero poll interval poll a transition with plain sends, so the jobs run out only
/// when its copies have finished on the copy threads; between batches of jobs the wait
/// leaves them the cores. Fails after wait_limit, naming `what`.
inline void settle(caf::scheduler::test_coordinator& sched,
                   std::string_view what = "the actors to run out of jobs") {
  wait_until(what, [&] {
    sched.run(256);
    return !sched.has_job();
  }, [&] { return std::string{"jobs are still queued"}; });
}

/// Runs jobs and fires timers (an allocator's poll timer) until neither is left.
inline void drive(caf::scheduler::test_coordinator& sched,
                  std::string_view what = "the actors to settle, timers included") {
  wait_until(what, [&] {
    sched.run();
    return sched.trigger_timeouts() == 0 && !sched.has_job();
  }, [&] { return std::string{"jobs or timers are still pending"}; });
}

/// A reply as the test reads it: the value, an error, or nothing (yet).
template <class T>
struct reply {
  std::optional<T> value;
  std::optional<caf::error> error;
  bool answered() const { return value || error; }
  std::optional<messages::gpumem_errc> code() const {
    return error ? messages::gpumem_code(*error) : std::nullopt;
  }
};

} // namespace gpumem::test
