#pragma once
// One device allocator on CAF's deterministic test coordinator, over a host backend
// with one emulated device: nothing runs unless the test says so, so a transition is
// caught in the middle and the order of replies is exact. Shared by the allocator's
// request tests and its pressure-response tests.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"

#include "actors/actor_test_support.hpp"

namespace gpumem::test::allocator {

using namespace gpumem::messages;
using actors::asleep_behaviour;

constexpr std::size_t capacity = 256 * MiB;
constexpr std::size_t granularity = 2 * MiB;

struct fixture {
  // The backend outlives the actor system (and with it the engine).
  cuda::host_backend backend;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  device_allocator_actor aut;

  explicit fixture(asleep_behaviour mode = asleep_behaviour::queue,
                   actors::pressure_response pressure = {},
                   std::function<void(actors::device_allocator_options&)> adjust = {},
                   core::engine_config engine = {})
    : backend(test::host_devices(1, capacity, granularity)),
      sys(test::testing_config(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
    auto options = test::quiet_allocator_options();
    options.while_asleep = mode;
    options.pressure = std::move(pressure);
    if (adjust)
      adjust(options);
    aut = test::spawn_allocator(sys, backend, 0, std::move(options), std::move(engine));
    sched.run();
  }

  ~fixture() {
    self->send_exit(aut, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Sends a request; the actor does not run until run()/drive().
  template <class... Ts>
  void send(Ts&&... xs) {
    self->send(aut, std::forward<Ts>(xs)...);
  }

  /// The next reply in self's mailbox, if there is one.
  template <class T>
  reply<T> next() {
    reply<T> r;
    self->receive([&](T& x) { r.value = std::move(x); },
                  [&](caf::error& e) { r.error = std::move(e); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    return r;
  }

  /// Runs the actor and fires its poll timers until nothing is left to do.
  void drive() { test::drive(sched, "the allocator to settle (poll timers included)"); }

  /// Sends a request, drives the actor to the end, and returns the reply.
  template <class T, class... Ts>
  reply<T> ask(Ts&&... xs) {
    send(std::forward<Ts>(xs)...);
    drive();
    auto r = next<T>();
    REQUIRE(r.answered());
    return r;
  }

  template <class T, class... Ts>
  T must(Ts&&... xs) {
    auto r = ask<T>(std::forward<Ts>(xs)...);
    INFO((r.error ? sys.render(*r.error) : std::string{"ok"}));
    REQUIRE(r.value);
    return std::move(*r.value);
  }

  region_handle allocate(std::uint64_t size, std::string tag = "default",
                         strategy how = strategy::configured) {
    allocation_request request;
    request.size = size;
    request.tag = std::move(tag);
    request.how = how;
    return must<region_handle>(allocate_atom::value, request);
  }

  statistics stats() { return must<statistics>(stats_atom::value); }
  device_status status() { return must<device_status>(status_atom::value); }
};

inline allocation_request request_of(std::uint64_t size, std::string tag = "default",
                              strategy how = strategy::configured) {
  allocation_request request;
  request.size = size;
  request.tag = std::move(tag);
  request.how = how;
  return request;
}

inline void fill(const region_handle& r, unsigned char seed) {
  auto* p = reinterpret_cast<unsigned char*>(static_cast<std::uintptr_t>(r.address));
  for (std::uint64_t i = 0; i < r.requested; ++i)
    p[i] = static_cast<unsigned char>(seed + i * 7);
}

inline bool intact(const region_handle& r, unsigned char seed) {
  auto* p = reinterpret_cast<const unsigned char*>(static_cast<std::uintptr_t>(r.address));
  for (std::uint64_t i = 0; i < r.requested; ++i)
    if (p[i] != static_cast<unsigned char>(seed + i * 7))
      return false;
  return true;
}


} // namespace gpumem::test::allocator
