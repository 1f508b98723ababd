// Faults during sleep and wake: the host backend makes the Nth create, map,
// set_access or copy fail, for N = 1, 2, 3, ... until the transition no longer meets
// the fault. Every failure must roll back completely: a failed wake leaves the tags
// asleep with the backend's chunks, mappings and free memory as they were, and a
// second wake restores every backed-up byte; a failed sleep leaves the engine awake
// with every region resident and intact.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "engine/engine_test_support.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;

namespace {

struct backend_state {
  cuda::host_backend::usage usage;
  std::size_t free = 0;
};

backend_state state_of(fixture& fx) {
  return {fx.host().current_usage(), fx.device_free()};
}

#define CHECK_BACKEND_UNCHANGED(before, fx)                                                      \
  do {                                                                                           \
    auto now_ = state_of(fx);                                                                    \
    CHECK(now_.usage.chunks == (before).usage.chunks);                                           \
    CHECK(now_.usage.mappings == (before).usage.mappings);                                       \
    CHECK(now_.usage.reservations == (before).usage.reservations);                               \
    CHECK(now_.usage.physical_bytes == (before).usage.physical_bytes);                           \
    CHECK(now_.free == (before).free);                                                           \
  } while (false)

const char* point_name(cuda::fault_point p) {
  switch (p) {
  case cuda::fault_point::reserve: return "reserve";
  case cuda::fault_point::create: return "create";
  case cuda::fault_point::map: return "map";
  case cuda::fault_point::set_access: return "set_access";
  case cuda::fault_point::copy: return "copy";
  }
  return "?";
}

/// After a successful wake: backed-up regions intact, discarded ones rewritten.
void check_after_wake(engine& e, const std::vector<region_info>& backed_up,
                      const std::vector<region_info>& discarded) {
  for (const auto& r : backed_up) {
    auto now = e.region(r.id);
    REQUIRE(now.ok());
    CHECK(now->address == r.address);
    CHECK(now->state == region_state::resident);
    CHECK_REGION_PATTERN(r, r.id);
  }
  for (const auto& r : discarded) {
    auto now = e.region(r.id);
    REQUIRE(now.ok());
    CHECK(now->state == region_state::resident);
    fill_region(r, r.id);
  }
}

void check_still_asleep(engine& e, const std::vector<region_info>& backed_up,
                        const std::vector<region_info>& discarded) {
  CHECK(e.state() == engine_state::asleep);
  CHECK(all_tags_asleep(e));
  CHECK(e.physical_bytes() == 0);
  for (const auto& r : backed_up)
    CHECK(e.region(r.id)->state == region_state::backed_up);
  for (const auto& r : discarded)
    CHECK(e.region(r.id)->state == region_state::discarded);
}

/// The injected fault must surface: as device_failure carrying the device's error
/// or, where `oom_allowed`, as out_of_memory.
void check_fault_error(const core::engine_error& error, cuda::error_code injected,
                       bool oom_allowed) {
  INFO(error.to_string());
  bool device_failure = error.code() == engine_errc::device_failure;
  bool oom = oom_allowed && error.code() == engine_errc::out_of_memory;
  CHECK((device_failure || oom));
  if (device_failure) {
    REQUIRE(error.device().has_value());
    CHECK(error.device()->code() == injected);
  }
}

/// A lighter mix than populate(), for the tests that wake once per fault: a wake of it
/// still needs about a dozen chunks, maps and copies.
std::vector<region_info> populate_light(engine& e) {
  std::vector<region_info> out;
  auto add = [&](std::size_t size, const std::string& tag, strategy how) {
    auto r = must_allocate(e, size, tag, how);
    fill_region(r, r.id);
    out.push_back(r);
  };
  add(34 * MiB, weights, strategy::pooled);       // a large and a small chunk
  add(3 * MiB + 5, weights, strategy::first_fit);
  add(4 * MiB, weights, strategy::dedicated);
  for (std::size_t i = 0; i < 5; ++i)
    add(100 * KiB + i * 1111, weights, strategy::pooled);
  add(6 * MiB, kv_cache, strategy::pooled);
  add(5000, kv_cache, strategy::first_fit);
  add(777, activations, strategy::pooled);
  return out;
}

} // namespace

TEST_CASE("a device fault at any point of a wake rolls it back; the next wake succeeds",
          "[engine][faults][wake]") {
  // Each point fails with CUDA's out-of-memory on odd calls and with another error
  // on even ones, so both kinds of failure are rolled back.
  struct plan {
    cuda::fault_point point;
    cuda::error_code other;
    int at_least;  // failures a wake of several chunks must reach
  };
  const std::vector<plan> plans = {
    {cuda::fault_point::create, cuda::error_code::unknown, 3},
    {cuda::fault_point::map, cuda::error_code::unknown, 3},
    {cuda::fault_point::set_access, cuda::error_code::invalid_value, 1},
    // Not a sticky error: after one of those nothing is rolled back (below).
    {cuda::fault_point::copy, cuda::error_code::unknown, 2},
  };
  fixture fx;
  auto regions = populate_light(*fx);
  auto backed_up = with_tag(*fx, regions, weights);
  auto discarded = without_tag(*fx, regions, weights);

  for (const auto& p : plans) {
    INFO("fault in " << point_name(p.point));
    must_sleep(*fx, sleep_policy::level(1));
    auto base = state_of(fx);
    int failures = 0;
    bool finished = false;
    for (int nth = 1; nth <= 200 && !finished; ++nth) {
      auto code = nth % 2 == 1 ? cuda::error_code::out_of_memory : p.other;
      INFO("call " << nth << " fails with " << cuda::error_name(code));
      auto before = observable::of(*fx);
      auto failed_transitions = fx->statistics().failed_transitions;
      fx.host().inject_fault(p.point, nth, code);
      auto r = fx->wake_up();
      fx.host().clear_faults();
      if (r.ok()) {
        // The wake made fewer than nth such calls: nothing to roll back.
        finished = true;
        check_after_wake(*fx, backed_up, discarded);
        break;
      }
      ++failures;
      check_fault_error(r.error(), code,
                        p.point == cuda::fault_point::create
                          && code == cuda::error_code::out_of_memory);
      CHECK_UNCHANGED(before, *fx);
      check_still_asleep(*fx, backed_up, discarded);
      CHECK_BACKEND_UNCHANGED(base, fx);
      CHECK(fx->statistics().failed_transitions == failed_transitions + 1);
      CHECK_INVARIANTS(fx);

      // Without a fault the same wake goes through with every byte, then sleep again.
      must_wake(*fx);
      check_after_wake(*fx, backed_up, discarded);
      CHECK_INVARIANTS(fx);
      must_sleep(*fx, sleep_policy::level(1));
      CHECK_BACKEND_UNCHANGED(base, fx);
    }
    CHECK(finished);
    CHECK(failures >= p.at_least);
    REQUIRE(fx->state() == engine_state::awake);
    CHECK_INVARIANTS(fx);
  }
}

TEST_CASE("a fault while waking the second of two tags leaves both asleep",
          "[engine][faults][wake]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(*fx, regions, weights);
  auto kv = with_tag(*fx, regions, kv_cache);
  auto act = with_tag(*fx, regions, activations);
  must_sleep(*fx, sleep_policy::backing_up({weights, kv_cache}));
  auto base = state_of(fx);

  // Count the maps a wake of weights alone makes, then fault the one just after it
  // in a wake of weights and kv_cache.
  int maps_for_weights = 0;
  for (int nth = 1; nth <= 200; ++nth) {
    fx.host().inject_fault(cuda::fault_point::map, nth, cuda::error_code::out_of_memory);
    auto r = fx->wake_up({weights});
    fx.host().clear_faults();
    if (r.ok()) {
      maps_for_weights = nth - 1;
      break;
    }
    CHECK_BACKEND_UNCHANGED(base, fx);
  }
  REQUIRE(maps_for_weights > 0);
  must_sleep(*fx, [] {
    auto p = sleep_policy::backing_up({weights});
    p.tags = {weights};
    return p;
  }());
  CHECK_BACKEND_UNCHANGED(base, fx);

  auto before = observable::of(*fx);
  fx.host().inject_fault(cuda::fault_point::map, maps_for_weights + 1,
                          cuda::error_code::out_of_memory);
  auto r = fx->wake_up({weights, kv_cache});
  fx.host().clear_faults();
  INFO(outcome(r));
  REQUIRE_FALSE(r.ok());
  check_fault_error(r.error(), cuda::error_code::out_of_memory, false);
  CHECK_UNCHANGED(before, *fx);
  CHECK(fx->tag_asleep(weights));
  CHECK(fx->tag_asleep(kv_cache));
  CHECK(fx->tag_asleep(activations));
  CHECK_BACKEND_UNCHANGED(base, fx);
  CHECK_INVARIANTS(fx);

  must_wake(*fx);
  check_after_wake(*fx, w, {});
  check_after_wake(*fx, kv, act);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a copy fault during sleep fails the sleep and leaves the engine awake and intact",
          "[engine][faults][sleep]") {
  for (auto code : {cuda::error_code::out_of_memory, cuda::error_code::unknown}) {
    INFO("copies fail with " << cuda::error_name(code));
    fixture fx;
    auto regions = populate(*fx);
    auto backed_up = with_tag(*fx, regions, weights);
    auto discarded = without_tag(*fx, regions, weights);
    auto base = state_of(fx);
    auto physical = fx->physical_bytes();
    int failures = 0;
    bool finished = false;
    for (int nth = 1; nth <= 200; ++nth) {
      INFO("copy call " << nth);
      auto before = observable::of(*fx);
      auto failed_transitions = fx->statistics().failed_transitions;
      fx.host().inject_fault(cuda::fault_point::copy, nth, code);
      auto r = fx->sleep(sleep_policy::level(1));
      fx.host().clear_faults();
      if (r.ok()) {
        finished = true;
        break;
      }
      ++failures;
      check_fault_error(r.error(), code, false);
      CHECK(fx->state() == engine_state::awake);
      for (const auto& tag : {weights, kv_cache, activations})
        CHECK_FALSE(fx->tag_asleep(tag));
      CHECK(fx->physical_bytes() == physical);
      CHECK_UNCHANGED(before, *fx);
      CHECK_BACKEND_UNCHANGED(base, fx);
      CHECK(fx->statistics().failed_transitions == failed_transitions + 1);
      for (const auto& x : regions) {
        auto now = fx->region(x.id);
        REQUIRE(now.ok());
        CHECK(now->state == region_state::resident);
        CHECK(now->contents_defined);
        CHECK_REGION_PATTERN(x, x.id);
      }
      CHECK_INVARIANTS(fx);
      // The engine still allocates and frees.
      auto extra = must_allocate(*fx, 64 * KiB, weights);
      must_free(*fx, extra.id);
      base = state_of(fx);
      physical = fx->physical_bytes();
    }
    CHECK(finished);
    CHECK(failures >= 2);
    // The sleep that finally went through kept weights' bytes.
    REQUIRE(fx->state() == engine_state::asleep);
    CHECK(fx->physical_bytes() == 0);
    must_wake(*fx);
    check_after_wake(*fx, backed_up, discarded);
    CHECK_INVARIANTS(fx);
  }
}

TEST_CASE("a copy fault during a step-wise sleep is reported by advance() and rolled back",
          "[engine][faults][sleep][transition]") {
  fixture fx;
  auto regions = populate(*fx);
  auto physical = fx->physical_bytes();
  auto base = state_of(fx);
  auto before = observable::of(*fx);
  fx.host().inject_fault(cuda::fault_point::copy, 2, cuda::error_code::out_of_memory);
  auto begun = fx->begin_sleep(sleep_policy::level(1));
  INFO(outcome(begun));
  core::engine_result<core::transition_report> r =
    begun.ok() ? finish_transition(*fx) : core::engine_result<core::transition_report>(begun.error());
  fx.host().clear_faults();
  INFO(outcome(r));
  REQUIRE_FALSE(r.ok());
  check_fault_error(r.error(), cuda::error_code::out_of_memory, false);
  CHECK(fx->state() == engine_state::awake);
  CHECK(fx->physical_bytes() == physical);
  CHECK_UNCHANGED(before, *fx);
  CHECK_BACKEND_UNCHANGED(base, fx);
  for (const auto& x : regions)
    CHECK_REGION_PATTERN(x, x.id);
  CHECK_INVARIANTS(fx);
  // Allocation works again at once, and so does a sleep.
  must_allocate(*fx, 4096, kv_cache);
  must_sleep(*fx, sleep_policy::level(1));
  must_wake(*fx);
  check_after_wake(*fx, with_tag(*fx, regions, weights), without_tag(*fx, regions, weights));
}

TEST_CASE("a fault during a step-wise wake is reported by advance() and rolled back",
          "[engine][faults][wake][transition]") {
  for (auto point : {cuda::fault_point::create, cuda::fault_point::map, cuda::fault_point::copy}) {
    INFO("fault in " << point_name(point));
    fixture fx;
    auto regions = populate(*fx);
    must_sleep(*fx, sleep_policy::level(1));
    auto base = state_of(fx);
    auto before = observable::of(*fx);
    fx.host().inject_fault(point, 2, cuda::error_code::out_of_memory);
    auto begun = fx->begin_wake();
    INFO(outcome(begun));
    core::engine_result<core::transition_report> r =
      begun.ok() ? finish_transition(*fx)
                 : core::engine_result<core::transition_report>(begun.error());
    fx.host().clear_faults();
    INFO(outcome(r));
    REQUIRE_FALSE(r.ok());
    check_fault_error(r.error(), cuda::error_code::out_of_memory,
                      point == cuda::fault_point::create);
    CHECK_UNCHANGED(before, *fx);
    CHECK_BACKEND_UNCHANGED(base, fx);
    check_still_asleep(*fx, with_tag(*fx, regions, weights), without_tag(*fx, regions, weights));
    CHECK_ERROR(fx->allocate({.size = 4096, .tag = weights}), engine_errc::tag_asleep);
    must_wake(*fx);
    check_after_wake(*fx, with_tag(*fx, regions, weights), without_tag(*fx, regions, weights));
    CHECK_INVARIANTS(fx);
  }
}

TEST_CASE("a sticky copy fault loses the device: reported, nothing more asked of it",
          "[engine][faults][sleep]") {
  // CUDA_ERROR_ILLEGAL_ADDRESS kills the context on a GPU: every later call fails the
  // same way, so the engine must not promise a rollback or issue more calls.
  fixture fx;
  auto regions = populate(*fx);
  CHECK_FALSE(fx->device_lost().has_value());
  fx.host().inject_fault(cuda::fault_point::copy, 2, cuda::error_code::illegal_address);
  auto r = fx->sleep(sleep_policy::level(1));
  fx.host().clear_faults();
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK(r.error().code() == engine_errc::device_failure);
  REQUIRE(r.error().device().has_value());
  CHECK(r.error().device()->code() == cuda::error_code::illegal_address);
  CHECK(r.error().message().find("device is lost") != std::string::npos);
  REQUIRE(fx->device_lost().has_value());
  CHECK(fx->device_lost()->code() == cuda::error_code::illegal_address);

  // Every operation that would touch the device is refused, naming the sticky error.
  for (auto refused : {error_of(fx->allocate({.size = 4 * MiB, .tag = weights})),
                       error_of(fx->sleep(sleep_policy::level(2))),
                       error_of(fx->wake_up())}) {
    REQUIRE(refused.has_value());
    CHECK(*refused == engine_errc::device_failure);
  }
  auto again = fx->allocate({.size = 4 * MiB, .tag = weights});
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().message().find("CUDA_ERROR_ILLEGAL_ADDRESS") != std::string::npos);
}
