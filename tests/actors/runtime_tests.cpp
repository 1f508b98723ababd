// The runtime on CAF's real scheduler: a host backend with two emulated devices of
// 256 MiB, the device allocators, the balancer and the pressure monitor started from
// a runtime_config. Start and shutdown (so ~actor_system never hangs), errors as
// values, many concurrent clients through the balancer, and a sleep/wake round trip
// that keeps the weights' bytes at their addresses.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/all.hpp"
#include "support/wait.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace std::chrono_literals;

using test::wait_limit;

actors::runtime_config two_host_devices() {
  actors::runtime_config config;
  config.backend = actors::backend_kind::host;
  config.host.capacities = {256 * MiB, 256 * MiB};
  config.host.granularity = 2 * MiB;
  config.pressure.period = 50ms;
  return config;
}

caf::actor_system_config& with_protocol(caf::actor_system_config& cfg) {
  register_protocol(cfg);
  return cfg;
}

/// An actor system on the real scheduler with a runtime in it (destroyed first).
struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::unique_ptr<actors::runtime> rt;

  explicit fixture(const actors::runtime_config& config = two_host_devices())
    : sys(with_protocol(cfg)) {
    auto made = actors::runtime::create(sys, config);
    if (!made)
      FAIL("runtime::create: " << made.error().to_string());
    rt = std::move(made).value();
  }
  ~fixture() { rt.reset(); }

  /// A blocking request to the balancer: the value, or FAIL with the error.
  template <class T, class... Ts>
  T must(Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<T> value;
    std::string error;
    self->request(rt->balancer(), caf::duration{wait_limit}, std::forward<Ts>(xs)...)
      .receive([&](T& x) { value = std::move(x); },
               [&](caf::error& e) { error = sys.render(e); });
    if (!value)
      FAIL("request failed: " << error);
    return std::move(*value);
  }
};

// -- concurrent clients ------------------------------------------------------------

struct client_state {
  balancer_actor balancer;
  caf::actor report_to;
  std::mt19937 rng;
  int rounds_left = 0;
  std::uint64_t replies = 0;
  std::uint64_t errors = 0;
  std::string first_error;
};

void client_error(caf::event_based_actor* self, client_state& st, const caf::error& e) {
  ++st.replies;
  if (st.errors++ == 0)
    st.first_error = self->system().render(e);
}

void next_round(caf::event_based_actor* self, std::shared_ptr<client_state> st) {
  if (st->rounds_left == 0) {
    self->send(st->report_to, st->replies, st->errors, st->first_error);
    self->quit();
    return;
  }
  --st->rounds_left;
  static const char* const tags[] = {"default", "kv_cache", "activations", "weights"};
  allocation_request request;
  request.size = std::uniform_int_distribution<std::uint64_t>{1, 64 * KiB}(st->rng);
  request.tag = tags[std::uniform_int_distribution<int>{0, 3}(st->rng)];
  self->request(st->balancer, caf::duration{wait_limit}, allocate_atom::value, request)
    .then(
      [self, st](region_handle& handle) {
        ++st->replies;
        self->request(st->balancer, caf::duration{wait_limit}, deallocate_atom::value, handle)
          .then(
            [self, st](ok_atom) {
              ++st->replies;
              next_round(self, st);
            },
            [self, st](caf::error& e) {
              client_error(self, *st, e);
              next_round(self, st);
            });
      },
      [self, st](caf::error& e) {
        client_error(self, *st, e);
        next_round(self, st);
      });
}

/// Allocates and frees `rounds` times through the balancer, one round after the
/// other, then sends (replies, errors, first error) to `report_to` and quits.
caf::behavior client(caf::event_based_actor* self, balancer_actor balancer,
                     caf::actor report_to, unsigned seed, int rounds) {
  auto st = std::make_shared<client_state>();
  st->balancer = std::move(balancer);
  st->report_to = std::move(report_to);
  st->rng.seed(seed);
  st->rounds_left = rounds;
  next_round(self, st);
  return {[](int) {}};  // only responses arrive
}

void require_sums_match(const std::vector<statistics>& devices, const statistics& total) {
  stat_grid sum;
  for (const auto& d : devices) {
    sum.allocations += d.total.allocations;
    sum.frees += d.total.frees;
    sum.allocated.current += d.total.allocated.current;
    sum.allocated.allocated += d.total.allocated.allocated;
    sum.allocated.freed += d.total.allocated.freed;
  }
  CHECK(total.total.allocations == sum.allocations);
  CHECK(total.total.frees == sum.frees);
  CHECK(total.total.allocated.current == sum.allocated.current);
  CHECK(total.total.allocated.allocated == sum.allocated.allocated);
  CHECK(total.total.allocated.freed == sum.allocated.freed);
}

} // namespace

TEST_CASE("runtime: starts every actor and shuts down cleanly", "[runtime]") {
  fixture f;
  REQUIRE(f.rt->running());
  REQUIRE(f.rt->allocators().size() == 2);
  REQUIRE(f.rt->devices().size() == 2);
  CHECK(f.rt->monitor() != nullptr);
  CHECK(f.rt->balancer() != nullptr);
  CHECK(f.rt->backend().name() == "host");
  CHECK_FALSE(f.rt->backend_reason().empty());

  auto infos = f.must<std::vector<device_info>>(info_atom::value);
  REQUIRE(infos.size() == 2);
  CHECK(infos[0].device == 0);
  CHECK(infos[1].device == 1);

  // The pressure monitor watches both devices and has three subscribers.
  caf::scoped_actor self{f.sys};
  std::optional<pressure_monitor_status> status;
  self->request(f.rt->monitor(), caf::duration{wait_limit}, status_atom::value)
    .receive([&](pressure_monitor_status& s) { status = std::move(s); },
             [&](caf::error& e) { FAIL(f.sys.render(e)); });
  REQUIRE(status);
  CHECK(status->subscribers == 3);

  // Every actor terminates: the monitored handles see their down messages.
  auto balancer = f.rt->balancer();
  self->monitor(balancer);
  CHECK(f.rt->shutdown());
  CHECK_FALSE(f.rt->running());
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; }, caf::after(wait_limit) >> [] {});
  CHECK(down);
  CHECK(f.rt->shutdown());  // idempotent
}

TEST_CASE("runtime: each allocator hears of its own device's pressure only", "[runtime]") {
  fixture f;
  caf::scoped_actor self{f.sys};
  auto ask_monitor = [&](auto atom, auto& out) {
    self->request(f.rt->monitor(), caf::duration{wait_limit}, atom)
      .receive([&](std::decay_t<decltype(out)>& x) { out = std::move(x); },
               [&](caf::error& e) { FAIL(f.sys.render(e)); });
  };
  auto allocator_status = [&](std::size_t d) {
    device_status out;
    self->request(f.rt->allocators()[d], caf::duration{wait_limit}, status_atom::value)
      .receive([&](device_status& x) { out = std::move(x); },
               [&](caf::error& e) { FAIL(f.sys.render(e)); });
    return out;
  };

  // Another party takes 85 % of device 1 (warning at 80 %, critical at 92 %).
  auto& backend = f.rt->backend();
  std::vector<cuda::chunk_handle> taken;
  while (taken.size() * 2 * MiB < 218 * MiB) {
    auto c = backend.create_chunk(1, 2 * MiB);
    REQUIRE(c.ok());
    taken.push_back(*c);
  }
  std::vector<pressure_event> levels;
  test::wait_until("device 1 to reach warning", [&] {
    ask_monitor(pressure_atom::value, levels);
    REQUIRE(levels.size() == 2);
    return levels[1].level == pressure_level::warning;
  }, [&] { return std::string("device 1 is at ") + to_string(levels[1].level); });
  CHECK(levels[0].level == pressure_level::normal);

  // Sent with the reading that changed the level: device 1's allocator and the balancer.
  pressure_monitor_status status;
  ask_monitor(status_atom::value, status);
  CHECK(status.events_sent == 2);
  device_status one;
  test::wait_until("device 1's allocator to hear of warning", [&] {
    one = allocator_status(1);
    return one.pressure == pressure_level::warning;
  }, [&] { return std::string("its allocator knows ") + to_string(one.pressure); });
  CHECK(one.pressure == pressure_level::warning);
  CHECK(allocator_status(0).pressure == pressure_level::normal);

  for (auto c : taken)
    (void)backend.release_chunk(c);
}

TEST_CASE("runtime: create applies the configured log level", "[runtime]") {
  auto config = two_host_devices();
  config.log_level = spdlog::level::warn;
  {
    fixture f{config};
    CHECK(spdlog::get_level() == spdlog::level::warn);
  }
  spdlog::set_level(spdlog::level::info);
}

TEST_CASE("runtime: the configured strategies reach every allocator", "[runtime]") {
  auto config = two_host_devices();
  config.allocator.tag_strategies = {{"kv_cache", core::strategy::dedicated}};
  fixture f{config};
  for (std::int32_t d = 0; d < 2; ++d) {
    allocation_request request;  // strategy::configured
    request.size = 4 * KiB;
    request.tag = "kv_cache";
    request.device_hint = d;
    // dedicated: the region has a granule of its own.
    CHECK(f.must<region_handle>(allocate_atom::value, request).size == 2 * MiB);
    request.tag = "activations";
    CHECK(f.must<region_handle>(allocate_atom::value, request).size < 2 * MiB);
  }
}

TEST_CASE("runtime: the destructor alone shuts down", "[runtime]") {
  for (int i = 0; i < 3; ++i) {
    fixture f;
    (void)f.must<std::vector<device_info>>(info_atom::value);
  }  // ~runtime, then ~actor_system: neither may hang
  SUCCEED();
}

TEST_CASE("runtime: failures are values", "[runtime]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{with_protocol(cfg)};

  SECTION("an engine that cannot be created names its device") {
    auto config = two_host_devices();
    config.engine.default_alignment = 3;  // not a power of two
    auto made = actors::runtime::create(sys, config);
    REQUIRE_FALSE(made);
    CHECK(made.error().where == actors::runtime_error::stage::engine);
    CHECK(made.error().device == 0);
    CHECK_THAT(made.error().to_string(), Catch::Contains("engine (device 0)"));
  }
  SECTION("a backend that cannot be created") {
    auto config = two_host_devices();
    config.host.capacities.clear();  // a host backend with no devices
    config.host.devices = 0;
    auto made = actors::runtime::create(sys, config);
    REQUIRE_FALSE(made);
    CHECK(made.error().where == actors::runtime_error::stage::backend);
    CHECK_FALSE(made.error().message.empty());
  }
}

TEST_CASE("runtime: 16 concurrent clients allocate and free through the balancer",
          "[runtime]") {
  constexpr int clients = 16;
  constexpr int rounds = 200;
  fixture f;
  caf::scoped_actor self{f.sys};
  for (int i = 0; i < clients; ++i)
    f.sys.spawn(client, f.rt->balancer(), caf::actor{self}, 1000u + i, rounds);

  std::uint64_t replies = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  int reported = 0;
  for (int i = 0; i < clients; ++i) {
    bool timed_out = false;
    self->receive(
      [&](std::uint64_t r, std::uint64_t e, std::string& first) {
        ++reported;
        replies += r;
        errors += e;
        if (first_error.empty())
          first_error = first;
      },
      caf::after(wait_limit) >> [&] { timed_out = true; });
    REQUIRE_FALSE(timed_out);
  }
  CHECK(reported == clients);
  INFO("first error: " << first_error);
  CHECK(errors == 0);
  CHECK(replies == std::uint64_t{2} * clients * rounds);

  auto cluster = f.must<cluster_statistics>(stats_atom::value);
  CHECK(cluster.total.device == -1);
  CHECK(cluster.total.total.allocated.current == 0);
  CHECK(cluster.total.total.allocations == std::uint64_t{clients} * rounds);
  CHECK(cluster.total.total.frees == std::uint64_t{clients} * rounds);
  REQUIRE(cluster.devices.size() == 2);
  require_sums_match(cluster.devices, cluster.total);

  // The allocators' own statistics, asked directly, agree with the balancer's.
  std::vector<statistics> own;
  for (const auto& a : f.rt->allocators())
    self->request(a, caf::duration{wait_limit}, stats_atom::value)
      .receive([&](statistics& s) { own.push_back(std::move(s)); },
               [&](caf::error& e) { FAIL(f.sys.render(e)); });
  REQUIRE(own.size() == 2);
  require_sums_match(own, cluster.total);
  for (std::size_t d = 0; d < own.size(); ++d) {
    CHECK(own[d].device == cluster.devices[d].device);
    CHECK(own[d].total == cluster.devices[d].total);
  }
}

TEST_CASE("runtime: sleep_all and wake_all keep the weights' bytes at their addresses",
          "[runtime]") {
  fixture f;
  struct written {
    region_handle handle;
    std::vector<unsigned char> bytes;
  };
  std::vector<written> weights;
  std::mt19937 rng{7};
  const std::uint64_t sizes[] = {1 * MiB, 3 * MiB + 512, 64 * KiB, 5 * MiB};
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    allocation_request request;
    request.size = sizes[i];
    request.tag = "weights";
    request.device_hint = static_cast<std::int32_t>(i % 2);
    auto handle = f.must<region_handle>(allocate_atom::value, request);
    REQUIRE(handle.device == request.device_hint);
    written w{handle, std::vector<unsigned char>(sizes[i])};
    for (auto& b : w.bytes)
      b = static_cast<unsigned char>(rng());
    // The host backend's device addresses are host addresses.
    std::memcpy(reinterpret_cast<void*>(handle.address), w.bytes.data(), w.bytes.size());
    weights.push_back(std::move(w));
  }
  allocation_request cache;
  cache.size = 8 * MiB;
  cache.tag = "kv_cache";
  auto kv = f.must<region_handle>(allocate_atom::value, cache);

  auto before = f.must<cluster_statistics>(stats_atom::value);

  auto slept = f.must<std::vector<transition_report>>(sleep_all_atom::value,
                                                      sleep_policy::at_level(1));
  REQUIRE(slept.size() == 2);
  std::uint64_t backed_up = 0;
  for (const auto& r : slept) {
    CHECK(r.kind == transition_kind::sleep);
    backed_up += r.bytes_backed_up;
  }
  std::uint64_t weight_bytes = 0;
  for (auto s : sizes)
    weight_bytes += s;
  CHECK(backed_up >= weight_bytes);

  auto woke = f.must<std::vector<transition_report>>(wake_all_atom::value,
                                                     std::vector<std::string>{});
  REQUIRE(woke.size() == 2);
  for (const auto& r : woke)
    CHECK(r.kind == transition_kind::wake);

  for (const auto& w : weights) {
    INFO("region " << w.handle.region << " on device " << w.handle.device);
    CHECK(std::memcmp(reinterpret_cast<const void*>(w.handle.address), w.bytes.data(),
                      w.bytes.size()) == 0);
  }
  auto after = f.must<cluster_statistics>(stats_atom::value);
  CHECK(after.total.total.allocated.current == before.total.total.allocated.current);
  CHECK(after.total.sleeps == before.total.sleeps + 2);
  CHECK(after.total.wakes == before.total.wakes + 2);

  // The same handles (ids and addresses) free the regions after the wake.
  for (const auto& w : weights)
    (void)f.must<ok_atom>(deallocate_atom::value, w.handle);
  (void)f.must<ok_atom>(deallocate_atom::value, kv);
  auto end = f.must<cluster_statistics>(stats_atom::value);
  CHECK(end.total.total.allocated.current == 0);
}
