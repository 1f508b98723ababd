// The pressure monitor under CAF's deterministic test coordinator: a poll runs only when
// the test fires the monitor's timer (tick()), so every reading is taken at a usage the
// test set beforehand. "Another party" takes device memory straight from the host
// backend (create_chunk), as another process takes GPU memory.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/actors/pressure_monitor.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"

#include "actors/actor_test_support.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using actors::pressure_settings;

constexpr std::size_t capacity = 64 * MiB;
constexpr std::size_t granularity = 2 * MiB;

/// warning at 32 MiB in use, left below 24 MiB; critical at 48 MiB, left below 40 MiB.
pressure_settings test_settings(double hysteresis = 0.125) {
  pressure_settings s;
  s.period = std::chrono::milliseconds{100};
  s.warning = 0.5;
  s.critical = 0.75;
  s.hysteresis = hysteresis;
  return s;
}

/// Forwards to a host backend; memory() fails while `fail_memory` is set.
class flaky_backend final : public cuda::device_backend {
public:
  explicit flaky_backend(cuda::device_backend& inner) : inner_(inner) {}
  bool fail_memory = false;

  std::string_view name() const noexcept override { return inner_.name(); }
  cuda::result<int> device_count() override { return inner_.device_count(); }
  cuda::result<cuda::device_properties> properties(int d) override {
    return inner_.properties(d);
  }
  cuda::result<cuda::memory_info> memory(int d) override {
    if (fail_memory)
      return cuda::device_error{cuda::error_code::unknown, "memory(): injected failure"};
    return inner_.memory(d);
  }
  cuda::result<cuda::device_ptr> reserve(int d, std::size_t size, std::size_t a) override {
    return inner_.reserve(d, size, a);
  }
  cuda::status free_reservation(cuda::device_ptr base, std::size_t size) override {
    return inner_.free_reservation(base, size);
  }
  cuda::result<cuda::chunk_handle> create_chunk(int d, std::size_t size) override {
    return inner_.create_chunk(d, size);
  }
  cuda::status release_chunk(cuda::chunk_handle c) override { return inner_.release_chunk(c); }
  cuda::status map(cuda::device_ptr a, std::size_t s, cuda::chunk_handle c) override {
    return inner_.map(a, s, c);
  }
  cuda::status unmap(cuda::device_ptr a, std::size_t s) override { return inner_.unmap(a, s); }
  cuda::status set_access(int d, cuda::device_ptr a, std::size_t s) override {
    return inner_.set_access(d, a, s);
  }
  cuda::result<cuda::pinned_buffer> allocate_pinned(std::size_t s) override {
    return inner_.allocate_pinned(s);
  }
  cuda::result<cuda::copy_handle> copy_to_host_async(int d, void* dst, cuda::device_ptr src,
                                                     std::size_t s) override {
    return inner_.copy_to_host_async(d, dst, src, s);
  }
  cuda::result<cuda::copy_handle> copy_to_device_async(int d, cuda::device_ptr dst,
                                                       const void* src,
                                                       std::size_t s) override {
    return inner_.copy_to_device_async(d, dst, src, s);
  }
  cuda::status synchronize(int d) override { return inner_.synchronize(d); }

private:
  cuda::device_backend& inner_;
};

using event_log = std::shared_ptr<std::vector<pressure_event>>;

/// A subscriber that writes down every event it gets.
pressure_subscriber_actor::behavior_type recorder(pressure_subscriber_actor::pointer,
                                                  event_log log) {
  return {[log](const pressure_event& e) { log->push_back(e); }};
}

struct fixture {
  // The backends outlive the actor system.
  cuda::host_backend host;
  flaky_backend backend;
  std::vector<cuda::chunk_handle> taken[2];  // the other party's chunks, per device
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  pressure_monitor_actor monitor;

  explicit fixture(pressure_settings settings = test_settings(),
                   std::vector<std::int32_t> devices = {0, 1})
    : host(test::host_devices(2, capacity, granularity)),
      backend(host),
      sys(test::testing_config(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true) {
    monitor = sys.spawn(actors::pressure_monitor, &backend, std::move(devices),
                        settings);
    sched.run();
  }

  ~fixture() {
    self->send_exit(monitor, caf::exit_reason::user_shutdown);
    sched.run();
    for (auto& chunks : taken)
      for (auto c : chunks)
        (void) host.release_chunk(c);
  }

  /// The other party holds `bytes` of device `d` in all (takes or gives back chunks).
  void hold(int d, std::size_t bytes) {
    auto& chunks = taken[d];
    while (chunks.size() * granularity < bytes) {
      auto c = host.create_chunk(d, granularity);
      REQUIRE(c.ok());
      chunks.push_back(*c);
    }
    while (chunks.size() * granularity > bytes) {
      REQUIRE(host.release_chunk(chunks.back()).ok());
      chunks.pop_back();
    }
  }

  /// One period passes: the monitor polls, and whatever it sends is delivered.
  void tick() {
    REQUIRE(sched.trigger_timeouts() == 1);  // the monitor's poll timer, nothing else
    sched.run();
  }

  template <class T, class... Ts>
  T ask(Ts&&... xs) {
    self->send(monitor, std::forward<Ts>(xs)...);
    sched.run();
    std::optional<T> value;
    std::optional<caf::error> error;
    self->receive([&](T& x) { value = std::move(x); },
                  [&](caf::error& e) { error = std::move(e); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    INFO((error ? sys.render(*error) : std::string{"no answer"}));
    REQUIRE(value);
    return std::move(*value);
  }

  pressure_subscriber_actor subscriber(event_log log) {
    auto sub = sys.spawn(recorder, std::move(log));
    sched.run();
    REQUIRE(ask<ok_atom>(subscribe_atom::value, sub) == ok_atom::value);
    return sub;
  }

  /// A subscriber to one device's events.
  pressure_subscriber_actor subscriber(event_log log, std::int32_t device) {
    auto sub = sys.spawn(recorder, std::move(log));
    sched.run();
    REQUIRE(ask<ok_atom>(subscribe_atom::value, sub, device) == ok_atom::value);
    return sub;
  }

  /// The error a request is answered with (FAIL if it is a value or nothing).
  template <class... Ts>
  caf::error refusal(Ts&&... xs) {
    self->send(monitor, std::forward<Ts>(xs)...);
    sched.run();
    std::optional<caf::error> error;
    self->receive([&](ok_atom) {}, [&](caf::error& e) { error = std::move(e); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    REQUIRE(error);
    return std::move(*error);
  }

  pressure_monitor_status status() { return ask<pressure_monitor_status>(status_atom::value); }
  std::vector<pressure_event> readings() {
    return ask<std::vector<pressure_event>>(pressure_atom::value);
  }
};

void check_event(const pressure_event& e, std::int32_t device, pressure_level previous,
                 pressure_level level, std::size_t held) {
  CHECK(e.device == device);
  CHECK(e.previous == previous);
  CHECK(e.level == level);
  CHECK(e.total_bytes == capacity);
  CHECK(e.available_bytes == capacity - held);
  CHECK(e.time_ns > 0);
}

} // namespace

TEST_CASE("levels follow the thresholds with hysteresis", "[actors][pressure]") {
  auto s = test_settings();
  using L = pressure_level;
  CHECK(actors::next_pressure_level(L::normal, 0.49, s) == L::normal);
  CHECK(actors::next_pressure_level(L::normal, 0.50, s) == L::warning);
  CHECK(actors::next_pressure_level(L::normal, 0.80, s) == L::critical);
  CHECK(actors::next_pressure_level(L::warning, 0.40, s) == L::warning);
  CHECK(actors::next_pressure_level(L::warning, 0.375, s) == L::warning);
  CHECK(actors::next_pressure_level(L::warning, 0.37, s) == L::normal);
  CHECK(actors::next_pressure_level(L::critical, 0.70, s) == L::critical);
  CHECK(actors::next_pressure_level(L::critical, 0.60, s) == L::warning);
  CHECK(actors::next_pressure_level(L::critical, 0.40, s) == L::warning);
  CHECK(actors::next_pressure_level(L::critical, 0.30, s) == L::normal);
}

TEST_CASE("settings are validated", "[actors][pressure]") {
  CHECK(actors::validate(test_settings()).empty());
  CHECK(actors::validate(pressure_settings{}).empty());
  auto s = test_settings();
  s.period = std::chrono::nanoseconds{0};
  CHECK_FALSE(actors::validate(s).empty());
  s = test_settings();
  s.warning = 0;
  CHECK_FALSE(actors::validate(s).empty());
  s = test_settings();
  s.critical = s.warning;
  CHECK_FALSE(actors::validate(s).empty());
  s = test_settings();
  s.critical = 1.01;
  CHECK_FALSE(actors::validate(s).empty());
  s = test_settings();
  s.hysteresis = s.warning;
  CHECK_FALSE(actors::validate(s).empty());
  s = test_settings();
  s.hysteresis = -0.01;
  CHECK_FALSE(actors::validate(s).empty());
}

TEST_CASE("a monitor with bad input quits with invalid_config", "[actors][pressure]") {
  using devices = std::vector<std::int32_t>;
  auto bad_settings = test_settings();
  bad_settings.critical = 0.4;
  std::vector<std::pair<pressure_settings, devices>> cases{{test_settings(), devices{}},
                                                           {test_settings(), devices{0, 0}},
                                                           {test_settings(), devices{2}},
                                                           {test_settings(), devices{-1}},
                                                           {bad_settings, devices{0}}};
  for (const auto& [settings, list] : cases) {
    INFO("case " << list.size() << " device(s), critical " << settings.critical);
    fixture fx;
    auto bad = fx.sys.spawn(actors::pressure_monitor, &fx.backend, list, settings);
    fx.self->monitor(bad);
    fx.sched.run();
    std::optional<caf::error> reason;
    fx.self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                     caf::after(std::chrono::seconds(0)) >> [] {});
    REQUIRE(reason);
    CHECK(gpumem_code(*reason) == gpumem_errc::invalid_config);
  }
}

TEST_CASE("the level rises normal -> warning -> critical as another party takes memory",
          "[actors][pressure]") {
  fixture fx;
  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);

  auto first = fx.readings();
  REQUIRE(first.size() == 2);
  CHECK(first[0].device == 0);
  CHECK(first[1].device == 1);
  CHECK(first[0].level == pressure_level::normal);
  CHECK(first[0].available_bytes == capacity);

  fx.hold(0, 20 * MiB);
  fx.tick();
  CHECK(log->empty());

  fx.hold(0, 32 * MiB);  // 50 %
  fx.tick();
  REQUIRE(log->size() == 1);
  check_event(log->back(), 0, pressure_level::normal, pressure_level::warning, 32 * MiB);

  fx.hold(0, 50 * MiB);
  fx.tick();
  REQUIRE(log->size() == 2);
  check_event(log->back(), 0, pressure_level::warning, pressure_level::critical, 50 * MiB);
  CHECK(log->at(1).time_ns >= log->at(0).time_ns);

  // The other device is untouched.
  auto now = fx.readings();
  CHECK(now[0].level == pressure_level::critical);
  CHECK(now[0].previous == pressure_level::warning);  // the last poll changed it
  CHECK(now[1].level == pressure_level::normal);

  // Device 1 goes straight to critical in one poll.
  fx.hold(1, 64 * MiB);
  fx.tick();
  REQUIRE(log->size() == 3);
  check_event(log->back(), 1, pressure_level::normal, pressure_level::critical, 64 * MiB);
  CHECK(fx.readings()[0].previous == pressure_level::critical);  // unchanged since

  auto st = fx.status();
  CHECK(st.subscribers == 1);
  CHECK(st.events_sent == 3);
  CHECK(st.interval_ns == 100'000'000);
  REQUIRE(st.levels.size() == 2);
  CHECK(st.levels[1].level == pressure_level::critical);
}

TEST_CASE("hysteresis: usage wobbling around a threshold changes the level once",
          "[actors][pressure]") {
  fixture fx;
  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);

  for (int i = 0; i < 6; ++i) {
    fx.hold(0, 32 * MiB);  // at warning
    fx.tick();
    fx.hold(0, 30 * MiB);  // just below it, above warning - hysteresis (24 MiB)
    fx.tick();
  }
  REQUIRE(log->size() == 1);
  CHECK(log->back().level == pressure_level::warning);

  for (int i = 0; i < 6; ++i) {
    fx.hold(0, 48 * MiB);  // at critical
    fx.tick();
    fx.hold(0, 42 * MiB);  // above critical - hysteresis (40 MiB)
    fx.tick();
  }
  REQUIRE(log->size() == 2);
  check_event(log->back(), 0, pressure_level::warning, pressure_level::critical, 48 * MiB);

  fx.hold(0, 38 * MiB);  // below 40 MiB: critical is left
  fx.tick();
  REQUIRE(log->size() == 3);
  check_event(log->back(), 0, pressure_level::critical, pressure_level::warning, 38 * MiB);

  fx.hold(0, 24 * MiB);  // exactly warning - hysteresis: not below it
  fx.tick();
  CHECK(log->size() == 3);

  fx.hold(0, 22 * MiB);  // below: back to normal
  fx.tick();
  REQUIRE(log->size() == 4);
  check_event(log->back(), 0, pressure_level::warning, pressure_level::normal, 22 * MiB);
  CHECK(fx.readings()[0].level == pressure_level::normal);
}

TEST_CASE("without hysteresis the same wobble flaps", "[actors][pressure]") {
  fixture fx(test_settings(0.0));
  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);
  for (int i = 0; i < 6; ++i) {
    fx.hold(0, 32 * MiB);
    fx.tick();
    fx.hold(0, 30 * MiB);
    fx.tick();
  }
  CHECK(log->size() == 12);
}

TEST_CASE("unsubscribe stops events; a dead subscriber is removed", "[actors][pressure]") {
  fixture fx;
  auto a = std::make_shared<std::vector<pressure_event>>();
  auto b = std::make_shared<std::vector<pressure_event>>();
  auto sub_a = fx.subscriber(a);
  auto sub_b = fx.subscriber(b);
  CHECK(fx.ask<ok_atom>(subscribe_atom::value, sub_a) == ok_atom::value);  // twice: no-op
  CHECK(fx.status().subscribers == 2);

  fx.hold(0, 32 * MiB);
  fx.tick();
  CHECK(a->size() == 1);
  CHECK(b->size() == 1);

  CHECK(fx.ask<ok_atom>(unsubscribe_atom::value, sub_a) == ok_atom::value);
  CHECK(fx.ask<ok_atom>(unsubscribe_atom::value, sub_a) == ok_atom::value);  // unknown: no-op
  CHECK(fx.status().subscribers == 1);
  fx.hold(0, 48 * MiB);
  fx.tick();
  CHECK(a->size() == 1);
  CHECK(b->size() == 2);

  fx.self->send_exit(sub_b, caf::exit_reason::user_shutdown);
  fx.sched.run();
  CHECK(fx.status().subscribers == 0);
  fx.hold(0, 0);
  fx.tick();
  CHECK(b->size() == 2);
  CHECK(fx.status().events_sent == 3);
}

TEST_CASE("a late subscriber is told at once of devices under pressure", "[actors][pressure]") {
  fixture fx;
  fx.hold(1, 40 * MiB);
  fx.tick();
  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);
  fx.sched.run();
  REQUIRE(log->size() == 1);
  check_event(log->back(), 1, pressure_level::normal, pressure_level::warning, 40 * MiB);
}

TEST_CASE("a per-device subscriber hears of its own device only", "[actors][pressure]") {
  fixture fx;
  auto only0 = std::make_shared<std::vector<pressure_event>>();
  auto only1 = std::make_shared<std::vector<pressure_event>>();
  auto all = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(only0, 0);
  fx.subscriber(only1, 1);
  fx.subscriber(all, every_device);

  fx.hold(1, 32 * MiB);  // device 1: warning
  fx.tick();
  CHECK(only0->empty());
  REQUIRE(only1->size() == 1);
  check_event(only1->back(), 1, pressure_level::normal, pressure_level::warning, 32 * MiB);
  CHECK(all->size() == 1);

  fx.hold(0, 48 * MiB);  // device 0: critical
  fx.tick();
  REQUIRE(only0->size() == 1);
  check_event(only0->back(), 0, pressure_level::normal, pressure_level::critical, 48 * MiB);
  CHECK(only1->size() == 1);
  CHECK(all->size() == 2);
  auto st = fx.status();
  CHECK(st.subscribers == 3);
  CHECK(st.events_sent == 4);  // each event to its device's two subscribers
}

TEST_CASE("subscribing to another device adds it, and tells of it at once if under pressure",
          "[actors][pressure]") {
  fixture fx;
  fx.hold(1, 40 * MiB);
  fx.tick();
  auto log = std::make_shared<std::vector<pressure_event>>();
  auto sub = fx.subscriber(log, 0);
  fx.sched.run();
  CHECK(log->empty());  // device 0 is normal; device 1 is not its business

  REQUIRE(fx.ask<ok_atom>(subscribe_atom::value, sub, std::int32_t{1}) == ok_atom::value);
  fx.sched.run();
  REQUIRE(log->size() == 1);
  check_event(log->back(), 1, pressure_level::normal, pressure_level::warning, 40 * MiB);
  // Again, or for every device it already hears of: no repeat.
  REQUIRE(fx.ask<ok_atom>(subscribe_atom::value, sub, std::int32_t{1}) == ok_atom::value);
  REQUIRE(fx.ask<ok_atom>(subscribe_atom::value, sub, std::int32_t{0}) == ok_atom::value);
  fx.sched.run();
  CHECK(log->size() == 1);
  CHECK(fx.status().subscribers == 1);

  // Unsubscribe removes it from both devices.
  REQUIRE(fx.ask<ok_atom>(unsubscribe_atom::value, sub) == ok_atom::value);
  fx.hold(0, 32 * MiB);
  fx.hold(1, 0);
  fx.tick();
  CHECK(log->size() == 1);
}

TEST_CASE("subscribing to a device the monitor does not watch is unknown_device",
          "[actors][pressure]") {
  fixture fx(test_settings(), {1});
  auto log = std::make_shared<std::vector<pressure_event>>();
  auto sub = fx.sys.spawn(recorder, log);
  fx.sched.run();
  for (std::int32_t device : {0, 2, -2}) {
    INFO("device " << device);
    auto e = fx.refusal(subscribe_atom::value, sub, device);
    CHECK(gpumem_code(e) == gpumem_errc::unknown_device);
  }
  CHECK(fx.status().subscribers == 0);
  CHECK(fx.ask<ok_atom>(subscribe_atom::value, sub, std::int32_t{1}) == ok_atom::value);
  CHECK(fx.status().subscribers == 1);
}

TEST_CASE("a failed memory read keeps the previous level and reading", "[actors][pressure]") {
  fixture fx;
  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);
  fx.hold(0, 32 * MiB);
  fx.tick();
  REQUIRE(log->size() == 1);
  auto before = fx.readings()[0];

  fx.backend.fail_memory = true;
  fx.hold(0, 0);
  fx.tick();
  fx.tick();
  CHECK(log->size() == 1);
  auto during = fx.readings()[0];
  CHECK(during == before);

  fx.backend.fail_memory = false;
  fx.tick();
  REQUIRE(log->size() == 2);
  check_event(log->back(), 0, pressure_level::warning, pressure_level::normal, 0);
}

TEST_CASE("a subscribed device allocator trims its cache on warning",
          "[actors][pressure][allocator]") {
  fixture fx(test_settings(), {0});
  auto alloc = test::spawn_allocator(fx.sys, fx.backend, 0);
  fx.sched.run();
  auto ask_alloc = [&](auto... xs) {
    fx.self->send(alloc, xs...);
    fx.sched.run();
  };
  auto receive = [&](auto& out) {
    bool got = false;
    fx.self->receive([&](std::decay_t<decltype(out)>& x) { out = x;
      got = true; },
                     caf::after(std::chrono::seconds(0)) >> [] {});
    REQUIRE(got);
  };

  // The allocator caches 16 MiB: a region allocated and freed keeps its segment.
  allocation_request request;
  request.size = 16 * MiB;
  request.tag = "activations";
  ask_alloc(allocate_atom::value, request);
  region_handle big;
  receive(big);
  request.size = 1 * MiB;
  request.tag = "weights";
  ask_alloc(allocate_atom::value, request);
  region_handle small;
  receive(small);
  ask_alloc(deallocate_atom::value, big.region);
  ok_atom ok;
  receive(ok);
  ask_alloc(stats_atom::value);
  statistics s;
  receive(s);
  auto cached = static_cast<std::size_t>(s.total.cached.current);
  REQUIRE(cached >= 16 * MiB);
  auto mem = fx.host.memory(0);
  REQUIRE(mem.ok());
  auto engine_holds = mem->total - mem->free;

  auto log = std::make_shared<std::vector<pressure_event>>();
  fx.subscriber(log);
  REQUIRE(fx.ask<ok_atom>(subscribe_atom::value,
                          caf::actor_cast<pressure_subscriber_actor>(alloc)) == ok_atom::value);

  // The other party takes enough for warning, not for critical.
  std::size_t other = 0;
  while (engine_holds + other < 32 * MiB)
    other += granularity;
  REQUIRE(engine_holds + other < 48 * MiB);
  REQUIRE(engine_holds + other - cached < 24 * MiB);  // the trim suffices for normal
  fx.hold(0, other);

  fx.tick();  // the poll sees warning; the allocator gets the event and trims
  auto trimmed_at = std::chrono::system_clock::now();
  REQUIRE(log->size() == 1);
  auto changed = log->back();
  CHECK(changed.level == pressure_level::warning);

  ask_alloc(stats_atom::value);
  receive(s);
  CHECK(s.total.cached.current == 0);
  CHECK(s.trims == 1);
  ask_alloc(status_atom::value);
  device_status ds;
  receive(ds);
  CHECK(ds.pressure == pressure_level::warning);

  // The next poll sees the memory back: usage fell below warning - hysteresis.
  fx.tick();
  REQUIRE(log->size() == 2);
  auto released = log->back();
  CHECK(released.level == pressure_level::normal);
  CHECK(released.available_bytes == changed.available_bytes + cached);

  // The reaction time: from the level change (the event's timestamp) to the trim done,
  // and to the monitor's reading that sees the memory back. Under the test coordinator
  // the second is one fired timer, not a real period: both measure this process's
  // work (message passing, the trim), not what a loaded runtime would show.
  auto to_trim = std::chrono::duration<double, std::micro>(
    trimmed_at.time_since_epoch() - std::chrono::nanoseconds{changed.time_ns});
  auto to_reading = std::chrono::duration<double, std::micro>(
    std::chrono::nanoseconds{released.time_ns - changed.time_ns});
  spdlog::info("pressure reaction: level change -> cache trimmed ({} B): {:.1f} us; -> "
               "release seen by the monitor: {:.1f} us (test coordinator, one tick)",
               cached, to_trim.count(), to_reading.count());
  // Reported, not asserted: a test never asserts on wall-clock time.

  fx.self->send_exit(alloc, caf::exit_reason::user_shutdown);
  fx.sched.run();
}
