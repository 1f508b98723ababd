// The cache of wholly free segments: it keeps a burst's memory for the next burst,
// gives back what stayed idle for cache_decay (on the engine's own calls and on
// release_idle()), and on top of that holds at most cache_limit when one is set.
// The engine runs on a clock the test moves, so nothing here waits or times.

#include "engine/engine_test_support.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;

namespace {

using std::chrono::milliseconds;

/// A fixture whose engine reads a clock the test sets, in nanoseconds from 1 s.
struct clocked_fixture {
  std::uint64_t now = 1'000'000'000;
  fixture fx;

  explicit clocked_fixture(engine_config config) : fx(config) {
    fx->set_clock([this] { return now; });
  }
  ~clocked_fixture() { fx->set_clock(nullptr); }

  void advance(milliseconds by) { now += static_cast<std::uint64_t>(by.count()) * 1'000'000; }
  std::int64_t cached() { return fx->statistics().total.cached.current; }
};

engine_config decaying_after(milliseconds decay) {
  engine_config config;
  config.cache_decay = decay;
  return config;
}

} // namespace

TEST_CASE("a burst's memory serves the next burst without new chunks", "[engine][cache]") {
  // 300 MiB of 2 MiB blocks, more than the cache used to keep (256 MiB), freed and
  // allocated again three times.
  fixture fx({}, 512 * MiB);
  auto burst = [&] {
    std::vector<region_info> blocks;
    for (int i = 0; i < 150; ++i)
      blocks.push_back(must_allocate(*fx, 2 * MiB, kv_cache));
    for (const auto& b : blocks)
      must_free(*fx, b.id);
  };
  burst();
  auto created = fx->statistics().chunks_created;
  auto physical = fx->physical_bytes();
  CHECK(physical >= 300 * MiB);
  for (int round = 0; round < 3; ++round)
    burst();
  CHECK(fx->statistics().chunks_created == created);
  CHECK(fx->statistics().chunks_released == 0);
  CHECK(fx->physical_bytes() == physical);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("release_idle gives back the segments idle for cache_decay, and no others",
          "[engine][cache]") {
  clocked_fixture c(decaying_after(milliseconds{10'000}));
  auto& fx = c.fx;
  auto first = must_allocate(*fx, 8 * MiB, kv_cache);
  auto second = must_allocate(*fx, 6 * MiB, activations);
  must_free(*fx, first.id);
  c.advance(milliseconds{4'000});
  must_free(*fx, second.id);
  REQUIRE(c.cached() == static_cast<std::int64_t>(14 * MiB));

  c.advance(milliseconds{5'999});  // first idle 9.999 s
  auto none = fx->release_idle();
  CHECK(none.bytes_released == 0);
  CHECK(c.cached() == static_cast<std::int64_t>(14 * MiB));

  c.advance(milliseconds{1});  // first idle 10 s, second 6 s
  auto one = fx->release_idle();
  CHECK(one.bytes_released == 8 * MiB);
  CHECK(one.segments_released == 1);
  CHECK(c.cached() == static_cast<std::int64_t>(6 * MiB));
  CHECK(fx->physical_bytes() == 6 * MiB);

  c.advance(milliseconds{4'000});
  CHECK(fx->release_idle().bytes_released == 6 * MiB);
  CHECK(fx->physical_bytes() == 0);
  CHECK(fx.usage().physical_bytes == 0);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("allocate and free give back decayed segments on their own", "[engine][cache]") {
  clocked_fixture c(decaying_after(milliseconds{1'000}));
  auto& fx = c.fx;
  auto old = must_allocate(*fx, 8 * MiB, kv_cache);
  auto small = must_allocate(*fx, 1 * KiB, activations);
  must_free(*fx, old.id);
  auto released = fx->statistics().chunks_released;
  c.advance(milliseconds{1'000});

  SECTION("allocate") {
    auto r = must_allocate(*fx, 1 * KiB, activations);  // in small's segment
    CHECK(fx->statistics().chunks_released > released);
    CHECK(c.cached() == 0);
    CHECK(fx->physical_bytes() == 2 * MiB);
    must_free(*fx, r.id);
  }
  SECTION("free") {
    must_free(*fx, small.id);
    CHECK(fx->statistics().chunks_released > released);
    // The old segment went back; the one that just emptied stays cached.
    CHECK(c.cached() == static_cast<std::int64_t>(2 * MiB));
    CHECK(fx->physical_bytes() == 2 * MiB);
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a cached segment used again starts its idle time anew", "[engine][cache]") {
  clocked_fixture c(decaying_after(milliseconds{1'000}));
  auto& fx = c.fx;
  auto r = must_allocate(*fx, 4 * MiB, kv_cache);
  must_free(*fx, r.id);
  c.advance(milliseconds{900});
  auto again = must_allocate(*fx, 4 * MiB, kv_cache);  // the cached segment, in use again
  CHECK(fx->statistics().chunks_created == 2);
  c.advance(milliseconds{900});
  must_free(*fx, again.id);
  c.advance(milliseconds{900});  // 2.7 s since the first free, 0.9 s since the second
  CHECK(fx->release_idle().bytes_released == 0);
  CHECK(c.cached() == static_cast<std::int64_t>(4 * MiB));
  c.advance(milliseconds{100});
  CHECK(fx->release_idle().bytes_released == 4 * MiB);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a cache_decay of 0 gives wholly free segments back at once", "[engine][cache]") {
  fixture fx(decaying_after(milliseconds{0}));
  auto a = must_allocate(*fx, 4 * MiB, kv_cache);
  auto b = must_allocate(*fx, 1 * KiB, kv_cache);
  must_free(*fx, a.id);
  CHECK(fx->physical_bytes() == 2 * MiB);
  must_free(*fx, b.id);
  CHECK(fx->physical_bytes() == 0);
  CHECK(fx->statistics().total.cached.current == 0);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("cache_limit caps the cache, oldest segments first", "[engine][cache]") {
  engine_config config;
  config.cache_limit = 6 * MiB;
  fixture fx(config);
  auto first = must_allocate(*fx, 4 * MiB, kv_cache);
  auto second = must_allocate(*fx, 4 * MiB, kv_cache);
  auto third = must_allocate(*fx, 2 * MiB, kv_cache);
  must_free(*fx, first.id);
  must_free(*fx, second.id);  // 8 MiB cached: the first goes
  CHECK(fx->statistics().total.cached.current == static_cast<std::int64_t>(4 * MiB));
  must_free(*fx, third.id);  // 6 MiB cached: at the limit, both stay
  CHECK(fx->statistics().total.cached.current == static_cast<std::int64_t>(6 * MiB));
  CHECK(fx->physical_bytes() == 6 * MiB);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("release_idle leaves a transition's segments alone", "[engine][cache]") {
  clocked_fixture c(decaying_after(milliseconds{1'000}));
  auto& fx = c.fx;
  auto w = must_allocate(*fx, 4 * MiB, weights);
  auto kv = must_allocate(*fx, 4 * MiB, kv_cache);
  fill_region(w, 1);
  must_free(*fx, kv.id);
  REQUIRE(fx->begin_sleep(sleep_policy::backing_up({weights}), core::commit_mode::on_commit).ok());
  REQUIRE(finish_transition(*fx).ok());
  REQUIRE(fx->prepared());
  c.advance(milliseconds{2'000});
  CHECK(fx->release_idle().bytes_released == 0);
  REQUIRE(fx->abort().ok());
  CHECK(fx->release_idle().bytes_released == 4 * MiB);
  CHECK_REGION_PATTERN(w, 1);
  CHECK_INVARIANTS(fx);
}
