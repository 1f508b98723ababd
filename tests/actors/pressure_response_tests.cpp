// The device allocator's pressure responses under CAF's deterministic test coordinator:
// trim at warning; defragment, then offload least recently used offloadable tags to
// host at critical; wake what was offloaded at normal; the response times and counters
// in device_status. The test sends the events a pressure monitor would send.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"

#include "actors/allocator_fixture.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace gpumem::test::allocator;
using actors::asleep_behaviour;
using tags = std::vector<std::string>;

/// The engine stamps last use with a coarse clock (a few ms): a touch this much later
/// is surely newer.
constexpr auto coarse_tick = std::chrono::milliseconds(30);

std::int64_t system_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// What the monitor would send for device 0 with `used` bytes of it in use, stamped now.
pressure_event event_at(pressure_level level, pressure_level previous, std::uint64_t used) {
  pressure_event e;
  e.device = 0;
  e.total_bytes = capacity;
  e.available_bytes = capacity - used;
  e.level = level;
  e.previous = previous;
  e.time_ns = system_now_ns();
  return e;
}

pressure_event critical_full() {
  return event_at(pressure_level::critical, pressure_level::warning, capacity);
}

pressure_event normal_again() {
  return event_at(pressure_level::normal, pressure_level::warning, 8 * MiB);
}

actors::pressure_response offloading(tags offloadable) {
  actors::pressure_response p;
  p.offloadable_tags = std::move(offloadable);
  return p;
}

std::int64_t reserved_of(const statistics& s, const std::string& tag) {
  for (const auto& t : s.tags)
    if (t.tag == tag)
      return t.grid.reserved.current;
  return 0;
}

/// Another party takes every chunk left on the device (as another process would).
struct device_hog {
  cuda::host_backend& backend;
  std::vector<cuda::chunk_handle> taken;

  explicit device_hog(cuda::host_backend& b) : backend(b) {
    for (;;) {
      auto c = backend.create_chunk(0, granularity);
      if (!c)
        break;
      taken.push_back(*c);
    }
  }
  ~device_hog() { release(); }
  void release() {
    for (auto c : taken)
      (void)backend.release_chunk(c);
    taken.clear();
  }
};

} // namespace

TEST_CASE("a pressure warning trims the cache; critical defragments",
          "[actors][allocator][pressure]") {
  fixture fx;
  auto a = fx.allocate(8 * MiB, "activations");
  fx.allocate(1 * MiB, "weights");
  fx.must<ok_atom>(deallocate_atom::value, a.region);
  auto cached = fx.stats().total.cached.current;
  REQUIRE(cached > 0);

  fx.send(event_at(pressure_level::warning, pressure_level::normal, 210 * MiB));
  fx.drive();
  auto s = fx.stats();
  CHECK(s.total.cached.current == 0);
  CHECK(s.trims == 1);
  auto st = fx.status();
  CHECK(st.pressure == pressure_level::warning);
  CHECK(st.pressure_responses == 1);
  CHECK(st.last_response_bytes == static_cast<std::uint64_t>(cached));
  CHECK(st.last_response_ms > 0);
  CHECK(st.max_response_ms == st.last_response_ms);

  fx.send(critical_full());
  fx.drive();
  CHECK(fx.stats().defragmentations == 1);
  st = fx.status();
  CHECK(st.pressure == pressure_level::critical);
  CHECK(st.pressure_responses == 2);
  CHECK(st.max_response_ms >= st.last_response_ms);
  CHECK(st.total_response_ms >= st.max_response_ms);
  // Both responses are counted by duration, each in the bucket its milliseconds fall in.
  const auto& d = st.response_durations;
  REQUIRE(d.check() == caf::none);
  REQUIRE(d.counts.size() == d.upper_bounds.size() + 1);
  std::uint64_t counted = 0;
  for (auto c : d.counts)
    counted += c;
  CHECK(counted == 2);
  auto slowest = std::find_if(d.upper_bounds.begin(), d.upper_bounds.end(),
                              [&](double b) { return st.max_response_ms / 1e3 <= b; });
  CHECK(d.counts[static_cast<std::size_t>(slowest - d.upper_bounds.begin())] >= 1);
  CHECK(st.offloads == 0);  // no offloadable tag lives here
  CHECK(st.asleep_tags.empty());
}

TEST_CASE("critical offloads an offloadable tag to host; its requests wait for the wake at "
          "normal, which brings its bytes back",
          "[actors][allocator][pressure][offload]") {
  fixture fx;
  auto kv = fx.allocate(24 * MiB + 4096, "kv_cache");
  fill(kv, 5);
  auto w = fx.allocate(4 * MiB, "weights");
  auto before = fx.status();
  REQUIRE(reserved_of(fx.stats(), "kv_cache") >= static_cast<std::int64_t>(24 * MiB));

  fx.send(critical_full());
  fx.sched.run();  // the event: defragment, and the offload begins
  // The actor answers at once what observes it; the rest waits for the transition.
  fx.send(allocate_atom::value, request_of(1 * MiB, "kv_cache"));
  fx.send(touch_atom::value, w.region);
  fx.send(status_atom::value);
  fx.sched.run();
  auto during = fx.next<device_status>();
  REQUIRE(during.value);
  CHECK(during.value->state == device_state::falling_asleep);
  CHECK(during.value->pending_requests == 2);

  fx.drive();
  CHECK(fx.next<ok_atom>().value);                 // the touch, after the offload
  CHECK_FALSE(fx.next<region_handle>().answered());  // kv_cache sleeps: it waits
  auto st = fx.status();
  CHECK(st.state == device_state::asleep);
  CHECK(st.asleep_tags == tags{"kv_cache"});
  CHECK(st.offloaded_tags == tags{"kv_cache"});
  CHECK(st.pending_requests == 1);
  CHECK(st.physical_bytes + 24 * MiB <= before.physical_bytes);
  auto s = fx.stats();
  CHECK(reserved_of(s, "kv_cache") == 0);
  CHECK(s.sleeps == 1);
  CHECK(s.defragmentations == 1);
  CHECK(s.bytes_backed_up >= kv.requested);  // backed up, not discarded
  CHECK(s.bytes_discarded == 0);
  // The response: from the level change to the offload's end.
  CHECK(st.offloads == 1);
  CHECK(st.bytes_offloaded >= kv.requested);
  CHECK(st.pressure_responses == 1);
  CHECK(st.last_response_ms > 0);
  CHECK(st.max_response_ms == st.last_response_ms);
  CHECK(st.last_response_bytes >= 24 * MiB);
  CHECK(st.offload_wakes == 0);

  fx.send(normal_again());
  fx.drive();
  auto served = fx.next<region_handle>();
  REQUIRE(served.value);
  CHECK(served.value->tag == "kv_cache");
  st = fx.status();
  REQUIRE(st.state == device_state::awake);  // mapped again: its bytes can be read
  CHECK(st.asleep_tags.empty());
  CHECK(st.offloaded_tags.empty());
  CHECK(st.pending_requests == 0);
  CHECK(st.offload_wakes == 1);
  CHECK(st.pressure_responses == 1);  // a wake is no response to pressure
  CHECK(fx.stats().wakes == 1);
  CHECK(intact(kv, 5));  // same address, same bytes
}

TEST_CASE("critical offloads the least recently used offloadable tag first, only as many "
          "as needed",
          "[actors][allocator][pressure][offload]") {
  const std::string touched = GENERATE(as<std::string>{}, "kv_cache", "prefix_cache");
  const std::string other = touched == "kv_cache" ? "prefix_cache" : "kv_cache";
  INFO("touched: " << touched);
  fixture fx{asleep_behaviour::queue, offloading({"kv_cache", "prefix_cache"})};
  auto kv = fx.allocate(32 * MiB, "kv_cache");
  auto prefix = fx.allocate(32 * MiB, "prefix_cache");
  std::this_thread::sleep_for(coarse_tick);
  fx.must<ok_atom>(touch_atom::value, touched == "kv_cache" ? kv.region : prefix.region);

  // 240 MiB in use: one 32 MiB tag brings it below (0.92 - 0.05) x 256 MiB = 222.7 MiB.
  fx.send(event_at(pressure_level::critical, pressure_level::warning, 240 * MiB));
  fx.drive();
  auto st = fx.status();
  CHECK(st.asleep_tags == tags{other});
  CHECK(st.offloaded_tags == tags{other});
  // The recently used tag stays awake and is served at once.
  auto more = fx.allocate(1 * MiB, touched);
  CHECK(more.tag == touched);
}

TEST_CASE("when no single tag suffices, critical offloads them all, least recently used "
          "first",
          "[actors][allocator][pressure][offload]") {
  fixture fx{asleep_behaviour::queue, offloading({"kv_cache", "prefix_cache", "scratch"})};
  auto kv = fx.allocate(8 * MiB, "kv_cache");
  fx.allocate(8 * MiB, "prefix_cache");
  fx.allocate(8 * MiB, "weights");  // not offloadable
  std::this_thread::sleep_for(coarse_tick);
  fx.must<ok_atom>(touch_atom::value, kv.region);
  fx.send(critical_full());
  fx.drive();
  auto st = fx.status();
  CHECK(st.offloaded_tags == tags{"prefix_cache", "kv_cache"});
  CHECK(st.asleep_tags == tags{"kv_cache", "prefix_cache"});  // in the engine's tag order
  CHECK(st.offloads == 1);  // one sleep of both
  fx.allocate(1 * MiB, "weights");
}

TEST_CASE("normal wakes only what pressure offloaded, never a client's sleep",
          "[actors][allocator][pressure][offload]") {
  fixture fx{asleep_behaviour::queue, offloading({"kv_cache", "prefix_cache"})};
  auto kv = fx.allocate(8 * MiB, "kv_cache");
  auto prefix = fx.allocate(8 * MiB, "prefix_cache");
  fill(kv, 1);
  fill(prefix, 9);
  fx.must<transition_report>(sleep_atom::value,
                             sleep_policy::backing_up({"prefix_cache"}, {"prefix_cache"}));

  fx.send(critical_full());
  fx.drive();
  auto st = fx.status();
  CHECK(st.asleep_tags == tags{"kv_cache", "prefix_cache"});
  CHECK(st.offloaded_tags == tags{"kv_cache"});

  fx.send(normal_again());
  fx.drive();
  st = fx.status();
  REQUIRE(st.asleep_tags == tags{"prefix_cache"});
  CHECK(st.offloaded_tags.empty());
  CHECK(st.offload_wakes == 1);
  CHECK(intact(kv, 1));

  fx.must<transition_report>(wake_atom::value, tags{"prefix_cache"});
  CHECK(intact(prefix, 9));
}

TEST_CASE("a client's wake of an offloaded tag takes it off the offloaded list",
          "[actors][allocator][pressure][offload]") {
  const auto named = GENERATE(tags{}, tags{"kv_cache"});
  INFO("wake of " << named.size() << " named tag(s)");
  fixture fx;
  auto kv = fx.allocate(8 * MiB, "kv_cache");
  fill(kv, 4);
  fx.send(critical_full());
  fx.drive();
  REQUIRE(fx.status().offloaded_tags == tags{"kv_cache"});

  auto woke = fx.must<transition_report>(wake_atom::value, named);
  CHECK(woke.tags == tags{"kv_cache"});
  auto st = fx.status();
  CHECK(st.offloaded_tags.empty());
  REQUIRE(st.asleep_tags.empty());
  CHECK(intact(kv, 4));

  // Normal finds nothing of its own to wake.
  fx.send(normal_again());
  fx.drive();
  CHECK(fx.stats().wakes == 1);
  CHECK(fx.status().offload_wakes == 0);
}

/// The status as it is now, without firing timers (drive() would fire the back-off
/// timer of a wake that keeps failing, again and again).
device_status status_now(fixture& fx) {
  fx.send(status_atom::value);
  fx.sched.run();
  auto r = fx.next<device_status>();
  REQUIRE(r.value);
  return *r.value;
}

TEST_CASE("a wake refused for lack of memory keeps the tags offloaded and is tried again, "
          "with back-off, while pressure stays normal",
          "[actors][allocator][pressure][offload][retry]") {
  fixture fx;
  auto kv = fx.allocate(32 * MiB, "kv_cache");
  fill(kv, 21);
  fx.send(critical_full());
  fx.drive();
  REQUIRE(fx.status().offloaded_tags == tags{"kv_cache"});
  CHECK(fx.status().offload_wait_reason.find("pressure is critical") != std::string::npos);

  device_hog hog{fx.backend};
  REQUIRE_FALSE(hog.taken.empty());
  fx.send(normal_again());
  fx.sched.run();  // the wake is refused at admission: no transition, no timer but the retry
  auto st = status_now(fx);
  CHECK(st.offloaded_tags == tags{"kv_cache"});
  CHECK(st.asleep_tags == tags{"kv_cache"});
  CHECK(st.state == device_state::asleep);
  CHECK(st.offload_wakes == 0);
  CHECK(st.offload_wake_retries == 0);
  INFO(st.offload_wait_reason);
  CHECK(st.offload_wait_reason.find("wake refused") != std::string::npos);
  CHECK(st.offload_wait_reason.find("next try in 100 ms") != std::string::npos);

  // The retry comes with no new event; still no memory: refused again, later.
  REQUIRE(fx.sched.trigger_timeout());
  fx.sched.run();
  st = status_now(fx);
  CHECK(st.offload_wake_retries == 1);
  CHECK(st.offloaded_tags == tags{"kv_cache"});
  CHECK(st.offload_wait_reason.find("next try in 200 ms") != std::string::npos);

  // The memory comes back: the next retry wakes them, with no event from the monitor.
  hog.release();
  REQUIRE(fx.sched.trigger_timeout());
  fx.drive();
  st = fx.status();
  CHECK(st.offload_wake_retries == 2);
  CHECK(st.offloaded_tags.empty());
  REQUIRE(st.asleep_tags.empty());
  CHECK(st.offload_wait_reason.empty());
  CHECK(st.offload_wakes == 1);
  CHECK(intact(kv, 21));
}

TEST_CASE("pressure leaving normal stops the retries; the next normal event tries again",
          "[actors][allocator][pressure][offload][retry]") {
  fixture fx;
  auto kv = fx.allocate(32 * MiB, "kv_cache");
  fill(kv, 23);
  fx.send(critical_full());
  fx.drive();
  device_hog hog{fx.backend};
  fx.send(normal_again());
  fx.sched.run();
  REQUIRE(status_now(fx).offload_wait_reason.find("wake refused") != std::string::npos);
  fx.send(event_at(pressure_level::warning, pressure_level::normal, 210 * MiB));
  fx.sched.run();
  hog.release();
  fx.drive();  // the pending retry timer fires, finds pressure at warning: nothing
  auto st = fx.status();
  CHECK(st.offloaded_tags == tags{"kv_cache"});
  CHECK(st.offload_wake_retries == 0);
  CHECK(st.offload_wait_reason.find("pressure is warning") != std::string::npos);
  fx.send(normal_again());
  fx.drive();
  st = fx.status();
  CHECK(st.offloaded_tags.empty());
  CHECK(st.offload_wakes == 1);
  CHECK(intact(kv, 23));
}

TEST_CASE("normal during the offload: the wake follows the offload, unless pressure rose "
          "again meanwhile",
          "[actors][allocator][pressure][offload]") {
  fixture fx;
  auto kv = fx.allocate(16 * MiB, "kv_cache");
  fill(kv, 3);
  fx.send(critical_full());
  fx.sched.run();  // the offload begins; its first poll waits on the test clock
  fx.send(normal_again());
  fx.send(status_atom::value);
  fx.sched.run();
  auto during = fx.next<device_status>();
  REQUIRE(during.value);
  CHECK(during.value->state == device_state::falling_asleep);
  CHECK(during.value->pressure == pressure_level::normal);

  SECTION("pressure stays normal") {
    fx.drive();
    auto st = fx.status();
    CHECK(st.offloads == 1);
    CHECK(st.offload_wakes == 1);
    CHECK(st.offloaded_tags.empty());
    REQUIRE(st.state == device_state::awake);
    CHECK(intact(kv, 3));
  }
  SECTION("pressure rises again before the offload ends") {
    fx.send(event_at(pressure_level::warning, pressure_level::normal, 210 * MiB));
    fx.drive();
    auto st = fx.status();
    CHECK(st.offloads == 1);
    CHECK(st.offload_wakes == 0);
    CHECK(st.offloaded_tags == tags{"kv_cache"});
  }
}

TEST_CASE("with offload_at_critical off, critical only defragments; with trim_at_warning "
          "off, warning does nothing",
          "[actors][allocator][pressure]") {
  auto p = offloading({"kv_cache"});
  p.offload_at_critical = false;
  p.trim_at_warning = false;
  fixture fx{asleep_behaviour::queue, p};
  fx.allocate(8 * MiB, "kv_cache");
  auto a = fx.allocate(8 * MiB, "activations");
  fx.must<ok_atom>(deallocate_atom::value, a.region);
  REQUIRE(fx.stats().total.cached.current > 0);

  fx.send(event_at(pressure_level::warning, pressure_level::normal, 210 * MiB));
  fx.drive();
  CHECK(fx.stats().trims == 0);
  CHECK(fx.stats().total.cached.current > 0);
  CHECK(fx.status().pressure_responses == 0);

  fx.send(critical_full());
  fx.drive();
  auto s = fx.stats();
  CHECK(s.defragmentations == 1);
  CHECK(s.total.cached.current == 0);
  CHECK(s.sleeps == 0);
  auto st = fx.status();
  CHECK(st.asleep_tags.empty());
  CHECK(st.offloads == 0);
  CHECK(st.pressure_responses == 1);
  CHECK(st.last_response_bytes >= 8 * MiB);
  CHECK(st.last_response_ms > 0);
}

TEST_CASE("with wake_on_normal off, offloaded tags sleep until a client wakes them",
          "[actors][allocator][pressure][offload]") {
  auto p = offloading({"kv_cache"});
  p.wake_on_normal = false;
  fixture fx{asleep_behaviour::queue, p};
  auto kv = fx.allocate(8 * MiB, "kv_cache");
  fill(kv, 8);
  fx.send(critical_full());
  fx.drive();
  fx.send(normal_again());
  fx.drive();
  auto st = fx.status();
  CHECK(st.asleep_tags == tags{"kv_cache"});
  CHECK(st.offloaded_tags == tags{"kv_cache"});
  fx.must<transition_report>(wake_atom::value, tags{"kv_cache"});
  auto after = fx.status();
  CHECK(after.offloaded_tags.empty());
  REQUIRE(after.asleep_tags.empty());
  CHECK(intact(kv, 8));
}

TEST_CASE("the response time counts from the level change the event is stamped with",
          "[actors][allocator][pressure]") {
  fixture fx;
  auto a = fx.allocate(8 * MiB, "activations");
  fx.must<ok_atom>(deallocate_atom::value, a.region);
  auto event = event_at(pressure_level::warning, pressure_level::normal, 210 * MiB);

  SECTION("a stamp 200 ms ago") {
    event.time_ns -= 200'000'000;
    fx.send(event);
    fx.drive();
    CHECK(fx.status().last_response_ms >= 200);
  }
  SECTION("a stamp ahead of this clock (another host's) counts from the arrival") {
    event.time_ns += std::int64_t{3600} * 1'000'000'000;
    fx.send(event);
    fx.drive();
    auto st = fx.status();
    CHECK(st.last_response_ms > 0);
    CHECK(st.last_response_ms < 60'000);
  }
  SECTION("no stamp counts from the arrival") {
    event.time_ns = 0;
    fx.send(event);
    fx.drive();
    auto st = fx.status();
    CHECK(st.last_response_ms > 0);
    CHECK(st.last_response_ms < 60'000);
  }
}

TEST_CASE("an event for another device is ignored", "[actors][allocator][pressure]") {
  fixture fx;
  fx.allocate(8 * MiB, "kv_cache");
  auto event = critical_full();
  event.device = 1;
  fx.send(event);
  fx.drive();
  auto st = fx.status();
  CHECK(st.pressure == pressure_level::normal);
  CHECK(st.asleep_tags.empty());
  CHECK(st.pressure_responses == 0);
  CHECK(fx.stats().defragmentations == 0);
}
