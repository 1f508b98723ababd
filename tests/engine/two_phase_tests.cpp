// Sleep and wake in two phases (commit_mode::on_commit): prepared, nothing is lost;
// commit finishes; abort gives back exactly what was there before.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_test_support.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;

namespace {

void check_patterns(const std::vector<region_info>& rs) {
  for (const auto& r : rs)
    CHECK_REGION_PATTERN(r, r.id);
}

/// advance() until it answers, within a generous wall-clock deadline (the copies run
/// on the backend's copy thread, which a loaded machine may starve for a while).
core::engine_result<core::transition_report> advance_until_done(engine& e) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto done = e.advance())
      return std::move(*done);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  FAIL("advance() did not finish the transition's copies within 60 s");
  return core::engine_error(engine_errc::invalid_transition, "never finished");
}

core::transition_report must_prepare(engine& e) {
  auto r = advance_until_done(e);
  INFO("prepare: " << outcome(r));
  REQUIRE(r.ok());
  REQUIRE(e.prepared());
  return *r;
}

} // namespace

TEST_CASE("a prepared sleep keeps every region mapped and resident; abort keeps it so",
          "[engine][sleep][two-phase]") {
  fixture fx;
  auto regions = populate(*fx);
  auto physical = fx->physical_bytes();
  REQUIRE(fx->begin_sleep(sleep_policy::level(1), core::commit_mode::on_commit).ok());
  auto prepared = must_prepare(*fx);
  CHECK(prepared.bytes_backed_up == sum_requested(with_tag(*fx, regions, weights)));
  CHECK(prepared.bytes_discarded == 0);
  CHECK(fx->state() == engine_state::falling_asleep);
  CHECK(fx->physical_bytes() == physical);
  for (const auto& r : regions)
    CHECK(fx->region(r.id)->state == region_state::resident);
  check_patterns(regions);  // every byte in place, the discarded-to-be included
  CHECK(error_of(fx->allocate({.size = 1 * MiB, .tag = kv_cache}))
        == engine_errc::transition_in_progress);

  REQUIRE(fx->abort().ok());
  CHECK_FALSE(fx->prepared());
  CHECK(fx->state() == engine_state::awake);
  CHECK(fx->physical_bytes() == physical);
  check_patterns(regions);
  CHECK(fx->statistics().sleeps == 0);
  CHECK_INVARIANTS(fx);
  // Nothing is left half done: a whole sleep and wake still work.
  must_sleep(*fx, sleep_policy::level(1));
  REQUIRE(fx->wake_up().ok());
  check_patterns(with_tag(*fx, regions, weights));
}

TEST_CASE("a prepared sleep commits as a one-phase sleep would",
          "[engine][sleep][two-phase]") {
  fixture fx;
  auto regions = populate(*fx);
  REQUIRE(fx->begin_sleep(sleep_policy::level(1), core::commit_mode::on_commit).ok());
  must_prepare(*fx);
  auto committed = fx->commit();
  REQUIRE(committed.ok());
  CHECK(committed->bytes_backed_up == sum_requested(with_tag(*fx, regions, weights)));
  CHECK(committed->bytes_discarded >= sum_requested(without_tag(*fx, regions, weights)));
  CHECK(all_tags_asleep(*fx));
  CHECK(fx->physical_bytes() == 0);
  CHECK(fx->statistics().sleeps == 1);
  CHECK_FALSE(fx->commit().ok());  // nothing prepared any more
  REQUIRE(fx->wake_up().ok());
  check_patterns(with_tag(*fx, regions, weights));
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a prepared wake restores the bytes and keeps the backups; abort leaves the tags "
          "asleep with them, commit wakes them",
          "[engine][wake][two-phase]") {
  fixture fx;
  auto regions = populate(*fx);
  auto kept = with_tag(*fx, regions, kv_cache);
  must_sleep(*fx, sleep_policy::backing_up({kv_cache, weights}));
  auto asleep_physical = fx->physical_bytes();

  REQUIRE(fx->begin_wake({kv_cache}, core::commit_mode::on_commit).ok());
  auto prepared = must_prepare(*fx);
  CHECK(prepared.bytes_restored == sum_requested(kept));
  CHECK(fx->tag_asleep(kv_cache));  // until commit
  check_patterns(kept);             // mapped and restored already
  REQUIRE(fx->abort().ok());
  CHECK(fx->tag_asleep(kv_cache));
  CHECK(fx->physical_bytes() == asleep_physical);
  for (const auto& r : kept)
    CHECK(fx->region(r.id)->state == region_state::backed_up);

  // Again, to commit: the backups were kept through the abort.
  REQUIRE(fx->begin_wake({kv_cache}, core::commit_mode::on_commit).ok());
  must_prepare(*fx);
  auto committed = fx->commit();
  REQUIRE(committed.ok());
  CHECK(committed->bytes_restored == sum_requested(kept));
  CHECK_FALSE(fx->tag_asleep(kv_cache));
  CHECK(fx->tag_asleep(weights));
  check_patterns(kept);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a two-phase transition aborted while its copies run loses nothing",
          "[engine][two-phase]") {
  fixture fx;
  auto regions = populate(*fx);
  REQUIRE(fx->begin_sleep(sleep_policy::level(1), core::commit_mode::on_commit).ok());
  (void)fx->advance();  // some copies in flight
  REQUIRE(fx->abort().ok());
  CHECK(fx->state() == engine_state::awake);
  check_patterns(regions);
  CHECK(error_of(fx->abort()) == engine_errc::invalid_transition);
  CHECK_INVARIANTS(fx);
}
