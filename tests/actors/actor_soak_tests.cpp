// A randomized run of the actor runtime under CAF's deterministic test coordinator:
// several devices behind a balancer, many clients that allocate, write and verify
// their bytes, random collective and single-device sleeps and wakes, pressure events
// from outside, and faults injected into copies, maps, creates and access grants.
// After every step: every request was answered, and every byte a promise keeps is
// intact (a backed-up sleep, an offload, a failed transition's abort); bytes a sleep
// discarded are written again once their tag wakes.
//
// Seeded and reproducible: GPUMEM_ACTOR_SOAK_SEED (else random, printed) and
// GPUMEM_ACTOR_SOAK_STEPS (how many steps; ctest's actor_soak runs a bounded number,
// the `slow` label marks it for a long setting).

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gpumem/actors/balancer.hpp"
#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"

#include "actors/actor_test_support.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using test::reply;

constexpr int device_count = 3;
constexpr int client_count = 16;
constexpr std::size_t capacity = 128 * MiB;
constexpr std::size_t granularity = 2 * MiB;
const std::vector<std::string> tag_names{"weights", "kv_cache", "activations"};

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

/// One client's region and what its bytes should be.
struct held_region {
  int client = 0;
  region_handle handle;
  std::uint64_t seed = 0;
  bool defined = true;  // false: a sleep discarded it; written again when it wakes
  // What happened to it since its bytes were last seen intact, to name a loss: a
  // failed sleep_all while it was awake (A), a failed wake_all while it slept (B).
  bool through_failed_sleep_all = false;
  bool through_failed_wake_all = false;
};

std::uint8_t byte_at(std::uint64_t seed, std::uint64_t i) {
  auto x = (seed + i / 8) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  return static_cast<std::uint8_t>(x >> ((i % 8) * 8));
}

void write(const held_region& r) {
  auto* p = reinterpret_cast<std::uint8_t*>(static_cast<std::uintptr_t>(r.handle.address));
  for (std::uint64_t i = 0; i < r.handle.requested; ++i)
    p[i] = byte_at(r.seed, i);
}

/// Every page's first bytes and the last ones: a lost page (a discard, a wrong
/// restore) shows there, at a fraction of the cost of reading every byte each step.
bool intact(const held_region& r) {
  auto* p = reinterpret_cast<const std::uint8_t*>(static_cast<std::uintptr_t>(r.handle.address));
  auto n = r.handle.requested;
  auto check = [&](std::uint64_t from, std::uint64_t to) {
    for (auto i = from; i < std::min(to, n); ++i)
      if (p[i] != byte_at(r.seed, i))
        return false;
    return true;
  };
  for (std::uint64_t page = 0; page < n; page += 4096)
    if (!check(page, page + 64))
      return false;
  return check(n > 64 ? n - 64 : 0, n);
}

struct soak {
  cuda::host_backend backend;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
  caf::scoped_actor self;
  std::vector<device_allocator_actor> devices;
  balancer_actor balancer;
  std::mt19937_64 rng;
  std::vector<held_region> regions;
  std::map<std::string, std::uint64_t> counts;
  std::uint64_t next_seed = 1;
  /// The tags asleep on each device at the last check (before the step under way).
  std::vector<std::set<std::string>> sleeping_before =
    std::vector<std::set<std::string>>(device_count);

  bool slept_before(const held_region& r) const {
    return sleeping_before[r.handle.device].count(r.handle.tag) > 0;
  }

  explicit soak(std::uint64_t seed)
    : backend(test::host_devices(device_count, capacity, granularity)),
      sys(test::testing_config(cfg)),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())),
      self(sys, true), rng(seed) {
    auto options = test::quiet_allocator_options();
    options.poll_interval = std::chrono::microseconds{0};
    // Fail mode: a request for a sleeping tag is answered at once, so that every
    // request is answered by the end of its step.
    options.while_asleep = actors::asleep_behaviour::fail;
    options.pressure.offloadable_tags = {"kv_cache", "activations"};
    for (int d = 0; d < device_count; ++d)
      devices.push_back(test::spawn_allocator(sys, backend, d, options));
    actors::balancer_options b;
    b.refresh_interval = std::chrono::milliseconds{0};
    balancer = sys.spawn(actors::balancer, b);
    sched.run();
    for (auto& d : devices)
      REQUIRE(ask<device_info>(balancer, add_device_atom::value, d).value);
  }

  ~soak() {
    self->send_exit(balancer, caf::exit_reason::user_shutdown);
    for (auto& d : devices)
      self->send_exit(d, caf::exit_reason::user_shutdown);
    sched.run();
  }

  std::uint64_t pick(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng); }

  /// Sends, runs everything to quiescence, and returns the reply: there must be one.
  template <class T, class Handle, class... Ts>
  reply<T> ask(const Handle& to, Ts&&... xs) {
    self->send(to, std::forward<Ts>(xs)...);
    sched.run();
    reply<T> r;
    self->receive([&](T& x) { r.value = std::move(x); },
                  [&](caf::error& e) { r.error = std::move(e); },
                  caf::after(std::chrono::seconds(0)) >> [] {});
    if (!r.answered())
      FAIL("a request got no answer by the end of its step");
    if (r.error) {
      ++counts["errors"];
      auto text = error_message(*r.error);
      if (text.find("rolled back") != std::string::npos)
        ++counts["messages saying rolled back"];
    }
    return r;
  }

  /// The tags asleep on each device now.
  std::vector<std::set<std::string>> asleep() {
    std::vector<std::set<std::string>> result(device_count);
    for (int d = 0; d < device_count; ++d) {
      auto s = ask<device_status>(devices[d], status_atom::value);
      REQUIRE(s.value);
      result[d].insert(s.value->asleep_tags.begin(), s.value->asleep_tags.end());
    }
    return result;
  }

  /// A fault in the next few calls of some operation, now and then.
  void maybe_fault() {
    if (!chance(0.35))
      return;
    static const cuda::fault_point points[] = {cuda::fault_point::copy, cuda::fault_point::map,
                                               cuda::fault_point::create,
                                               cuda::fault_point::set_access};
    static const cuda::error_code codes[] = {cuda::error_code::out_of_memory,
                                             cuda::error_code::invalid_value,
                                             cuda::error_code::unknown};
    backend.inject_fault(points[pick(4)], static_cast<int>(1 + pick(4)), codes[pick(3)]);
    ++counts["faults injected"];
  }

  /// A sleep discarded the regions of `tags` on `device` that the policy did not keep.
  void discarded(std::int32_t device, const std::vector<std::string>& tags,
                 const std::set<std::string>& kept) {
    for (auto& r : regions)
      if (r.handle.device == device && !kept.count(r.handle.tag) &&
          std::find(tags.begin(), tags.end(), r.handle.tag) != tags.end())
        r.defined = false;
  }

  void allocate() {
    auto request = allocation_request{};
    request.size = 1 + pick(3 * MiB);
    request.tag = tag_names[pick(tag_names.size())];
    request.device_hint = chance(0.3) ? static_cast<std::int32_t>(pick(device_count)) : any_device;
    auto r = ask<region_handle>(balancer, allocate_atom::value, request);
    ++counts["allocations"];
    if (!r.value)
      return;
    held_region h{static_cast<int>(pick(client_count)), *r.value, next_seed++};
    write(h);
    regions.push_back(h);
  }

  void deallocate() {
    if (regions.empty())
      return;
    auto i = pick(regions.size());
    auto r = ask<ok_atom>(balancer, deallocate_atom::value, regions[i].handle);
    ++counts["frees"];
    if (r.value)
      regions.erase(regions.begin() + static_cast<std::ptrdiff_t>(i));
  }

  sleep_policy random_policy() {
    switch (pick(3)) {
      case 0: return sleep_policy::at_level(1);
      case 1: return sleep_policy::at_level(2);
      default: return sleep_policy::backing_up({"weights", "kv_cache"});
    }
  }

  static std::set<std::string> kept_by(const sleep_policy& p) {
    if (p.level == 1)
      return {"weights"};
    if (p.level == 2)
      return {};
    return {p.backup_tags.begin(), p.backup_tags.end()};
  }

  void sleep_all() {
    auto policy = random_policy();
    maybe_fault();
    auto r = ask<std::vector<transition_report>>(balancer, sleep_all_atom::value, policy);
    backend.clear_faults();
    ++counts["sleep_all"];
    if (!r.value) {
      ++counts["sleep_all failed"];
      for (auto& h : regions)
        if (!slept_before(h))
          h.through_failed_sleep_all = true;
      return;
    }
    for (const auto& report : *r.value)
      discarded(report.device, report.tags, kept_by(policy));
  }

  void wake_all() {
    maybe_fault();
    auto r = ask<std::vector<transition_report>>(balancer, wake_all_atom::value,
                                                 std::vector<std::string>{});
    backend.clear_faults();
    ++counts["wake_all"];
    if (!r.value) {
      ++counts["wake_all failed"];
      for (auto& h : regions)
        if (slept_before(h))
          h.through_failed_wake_all = true;
    }
  }

  void device_sleep() {
    auto d = static_cast<std::int32_t>(pick(device_count));
    auto tag = tag_names[pick(tag_names.size())];
    auto policy = chance(0.7) ? sleep_policy::backing_up({tag}, {tag})
                              : sleep_policy::at_level(2, {tag});
    maybe_fault();
    auto r = ask<transition_report>(devices[d], sleep_atom::value, policy);
    backend.clear_faults();
    ++counts["device sleeps"];
    if (r.value)
      discarded(d, r.value->tags, kept_by(policy));
  }

  void device_wake() {
    auto d = pick(device_count);
    maybe_fault();
    (void)ask<transition_report>(devices[d], wake_atom::value, std::vector<std::string>{});
    backend.clear_faults();
    ++counts["device wakes"];
  }

  void pressure() {
    auto d = static_cast<std::int32_t>(pick(device_count));
    pressure_event e;
    e.device = d;
    e.total_bytes = capacity;
    e.level = chance(0.5) ? pressure_level::critical : pressure_level::normal;
    e.available_bytes = e.level == pressure_level::critical ? 0 : capacity;
    e.previous = pressure_level::warning;
    maybe_fault();
    self->send(devices[d], e);
    sched.run();
    backend.clear_faults();
    ++counts[e.level == pressure_level::critical ? "pressure critical" : "pressure normal"];
  }

  /// Time passes: back-off retries and holds fire.
  void timers() {
    sched.trigger_timeouts();
    sched.run();
  }

  /// Every awake region's promised bytes are intact; discarded ones whose tag is
  /// awake again are written anew. Answers the losses, classified.
  void check(std::uint64_t step) {
    auto sleeping = asleep();
    sleeping_before = sleeping;
    for (auto& r : regions) {
      if (sleeping[r.handle.device].count(r.handle.tag))
        continue;  // unmapped: read it when it wakes
      if (!r.defined) {
        r.seed = next_seed++;
        write(r);
        r.defined = true;
        continue;
      }
      if (!intact(r)) {
        auto kind = r.through_failed_sleep_all   ? "lost after a failed sleep_all (A)"
                    : r.through_failed_wake_all ? "lost after a failed wake_all (B)"
                                                : "lost otherwise";
        ++counts[kind];
        UNSCOPED_INFO("step " << step << ": client " << r.client << "'s region "
                              << r.handle.region << " (" << r.handle.tag << ", device "
                              << r.handle.device << ") " << kind);
        write(r);  // count each loss once
      }
      r.through_failed_sleep_all = r.through_failed_wake_all = false;
    }
  }
};

} // namespace

TEST_CASE("randomized actor soak: every kept byte survives every transition and fault",
          "[actors][soak][slow]") {
  auto seed = env_or("GPUMEM_ACTOR_SOAK_SEED", std::random_device{}());
  auto steps = env_or("GPUMEM_ACTOR_SOAK_STEPS", 300);
  std::cout << "actor soak: seed " << seed << ", " << steps
            << " steps (GPUMEM_ACTOR_SOAK_SEED / GPUMEM_ACTOR_SOAK_STEPS)" << std::endl;
  soak s{seed};
  for (std::uint64_t step = 0; step < steps; ++step) {
    auto roll = s.pick(100);
    if (roll < 44 && (roll >= 36 || s.regions.size() > 64))
      s.deallocate();  // and, past 64 regions, instead of allocating
    else if (roll < 36)
      s.allocate();
    else if (roll < 54)
      s.sleep_all();
    else if (roll < 68)
      s.wake_all();
    else if (roll < 75)
      s.device_sleep();
    else if (roll < 82)
      s.device_wake();
    else if (roll < 93)
      s.pressure();
    else
      s.timers();
    s.check(step);
  }
  s.counts["steps"] = steps;
  s.counts["regions at the end"] = s.regions.size();
  std::cout << "actor soak: seed " << seed << ":";
  for (const auto& [what, n] : s.counts)
    std::cout << " " << what << "=" << n << ";";
  std::cout << std::endl;
  CHECK(s.counts["lost after a failed sleep_all (A)"] == 0);
  CHECK(s.counts["lost after a failed wake_all (B)"] == 0);
  CHECK(s.counts["lost otherwise"] == 0);
  CHECK(s.counts["messages saying rolled back"] == 0);
}
