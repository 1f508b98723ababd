// Sleep and wake: what each policy keeps and discards, that every chunk goes back to
// the device and comes back at the same addresses, partial sleeps and wakes, the
// transitions the engine refuses, wake admission and its margin, and the step-wise
// form of both transitions.

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine_test_support.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;

namespace {

bool equals_size_or_requested(std::size_t reported, const std::vector<region_info>& rs) {
  return reported == sum_sizes(rs) || reported == sum_requested(rs);
}

/// Checks that every region kept its id and address and is in `state`.
void check_regions_state(engine& e, const std::vector<region_info>& rs, region_state state) {
  for (const auto& r : rs) {
    auto now = e.region(r.id);
    INFO("region " << r.id << " (" << r.tag << "): " << outcome(now));
    REQUIRE(now.ok());
    CHECK(now->address == r.address);
    CHECK(now->size == r.size);
    CHECK(now->requested == r.requested);
    CHECK(now->tag == r.tag);
    CHECK(now->state == state);
  }
}

/// After a wake: backed-up regions hold their patterns, discarded ones are writable
/// with contents_defined false; both resident at their old addresses.
void check_woken(engine& e, const std::vector<region_info>& backed_up,
                 const std::vector<region_info>& discarded) {
  check_regions_state(e, backed_up, region_state::resident);
  check_regions_state(e, discarded, region_state::resident);
  for (const auto& r : backed_up) {
    CHECK(e.region(r.id)->contents_defined);
    CHECK_REGION_PATTERN(r, r.id);
  }
  for (const auto& r : discarded) {
    CHECK_FALSE(e.region(r.id)->contents_defined);
    fill_region(r, r.id);  // mapped and writable again
    CHECK_REGION_PATTERN(r, r.id);
  }
}

void check_released_everything(fixture& fx) {
  CHECK(fx->physical_bytes() == 0);
  CHECK(fx.device_free() == fx.device_total());
  auto usage = fx.usage();
  CHECK(usage.chunks == 0);
  CHECK(usage.mappings == 0);
  CHECK(usage.physical_bytes == 0);
  CHECK(fx->statistics().total.reserved.current == 0);
  CHECK(fx->statistics().total.active.current == 0);
}

/// `buckets` counted one duration, `seconds`, in the bucket whose bounds hold it.
void check_counted_once(const core::duration_buckets& buckets, double seconds) {
  const auto& bounds = core::duration_buckets::upper_bounds;
  std::size_t expected = 0;
  while (expected < bounds.size() && seconds > bounds[expected])
    ++expected;
  for (std::size_t i = 0; i < buckets.counts.size(); ++i) {
    INFO("bucket " << i << ", " << seconds << " s");
    CHECK(buckets.counts[i] == (i == expected ? 1u : 0u));
  }
}

} // namespace

TEST_CASE("level 1 sleep backs up weights, discards the rest and releases every chunk",
          "[engine][sleep]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);
  auto rest = without_tag(regions, weights);
  CHECK_INVARIANTS(fx);
  auto physical = fx->physical_bytes();
  auto allocated = fx->statistics().total.allocated.current;
  REQUIRE(physical > 0);

  auto report = must_sleep(*fx, sleep_policy::level(1));
  CHECK(report.kind == core::transition_kind::sleep);
  CHECK(sorted(report.tags) == sorted({weights, kv_cache, activations}));
  INFO("backed up " << report.bytes_backed_up << ", weights sizes " << sum_sizes(w)
                    << ", requested " << sum_requested(w));
  CHECK(equals_size_or_requested(report.bytes_backed_up, w));
  INFO("discarded " << report.bytes_discarded << ", others requested " << sum_requested(rest));
  CHECK(report.bytes_discarded >= sum_requested(rest));
  CHECK(report.bytes_released > 0);
  CHECK(report.bytes_released == physical);

  CHECK(fx->state() == engine_state::asleep);
  for (const auto& tag : {weights, kv_cache, activations})
    CHECK(fx->tag_asleep(tag));
  CHECK(all_tags_asleep(*fx));
  check_released_everything(fx);
  check_regions_state(*fx, w, region_state::backed_up);
  check_regions_state(*fx, rest, region_state::discarded);
  CHECK(fx->statistics().total.allocated.current == allocated);
  CHECK(fx->statistics().sleeps == 1);
  check_counted_once(fx->statistics().sleep_durations, report.seconds);
  CHECK_INVARIANTS(fx);

  for (const auto& tag : {weights, kv_cache, activations})
    CHECK_ERROR(fx->allocate({.size = 4096, .tag = tag}), engine_errc::tag_asleep);

  auto woken = must_wake(*fx);
  CHECK(woken.kind == core::transition_kind::wake);
  CHECK(woken.bytes_restored == report.bytes_backed_up);
  CHECK(woken.bytes_mapped > 0);
  CHECK(fx->state() == engine_state::awake);
  for (const auto& tag : {weights, kv_cache, activations})
    CHECK_FALSE(fx->tag_asleep(tag));
  check_woken(*fx, w, rest);
  CHECK(fx->statistics().wakes == 1);
  check_counted_once(fx->statistics().wake_durations, woken.seconds);
  CHECK_INVARIANTS(fx);
  // Usable as before.
  auto r = must_allocate(*fx, 3 * MiB, kv_cache);
  fill_region(r, 99);
  CHECK_REGION_PATTERN(r, 99);
  for (const auto& x : w)
    CHECK_REGION_PATTERN(x, x.id);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("level 2 sleep discards everything", "[engine][sleep]") {
  fixture fx;
  auto regions = populate(*fx);
  auto report = must_sleep(*fx, sleep_policy::level(2));
  CHECK(report.bytes_backed_up == 0);
  CHECK(report.bytes_discarded >= sum_requested(regions));
  CHECK(report.bytes_released > 0);
  CHECK(fx->state() == engine_state::asleep);
  check_released_everything(fx);
  check_regions_state(*fx, regions, region_state::discarded);
  CHECK_INVARIANTS(fx);

  auto woken = must_wake(*fx);
  CHECK(woken.bytes_restored == 0);
  CHECK(fx->state() == engine_state::awake);
  check_woken(*fx, {}, regions);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("sleep_policy levels and backing_up say what is kept", "[engine][sleep]") {
  CHECK(sleep_policy::level(1).backup_tags == std::vector<std::string>{weights});
  CHECK(sleep_policy::level(1).tags.empty());
  CHECK(sleep_policy::level(2).backup_tags.empty());
  CHECK(sleep_policy::backing_up({kv_cache}).backup_tags == std::vector<std::string>{kv_cache});
  CHECK_THROWS_AS(sleep_policy::level(0), std::invalid_argument);
  CHECK_THROWS_AS(sleep_policy::level(3), std::invalid_argument);
}

TEST_CASE("backing_up({kv_cache}) backs up exactly kv_cache", "[engine][sleep]") {
  fixture fx;
  auto regions = populate(*fx);
  auto kv = with_tag(regions, kv_cache);
  auto rest = without_tag(regions, kv_cache);
  auto report = must_sleep(*fx, sleep_policy::backing_up({kv_cache}));
  INFO("backed up " << report.bytes_backed_up);
  CHECK(equals_size_or_requested(report.bytes_backed_up, kv));
  CHECK(report.bytes_discarded >= sum_requested(rest));
  check_released_everything(fx);
  check_regions_state(*fx, kv, region_state::backed_up);
  check_regions_state(*fx, rest, region_state::discarded);
  CHECK_INVARIANTS(fx);

  auto woken = must_wake(*fx);
  CHECK(woken.bytes_restored == report.bytes_backed_up);
  check_woken(*fx, kv, rest);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a sleep limited to kv_cache leaves weights awake and usable", "[engine][sleep]") {
  fixture fx;
  auto regions = populate(*fx);
  auto kv = with_tag(regions, kv_cache);
  auto w = with_tag(regions, weights);
  auto act = with_tag(regions, activations);
  auto kv_reserved = fx->statistics().tags.at(kv_cache).reserved.current;
  auto physical = fx->physical_bytes();

  auto policy = sleep_policy::level(1);
  policy.tags = {kv_cache};
  auto report = must_sleep(*fx, policy);
  CHECK(report.tags == std::vector<std::string>{kv_cache});
  CHECK(report.bytes_backed_up == 0);
  CHECK(report.bytes_discarded >= sum_requested(kv));
  CHECK(static_cast<std::int64_t>(report.bytes_released) == kv_reserved);
  CHECK(fx->physical_bytes() == physical - static_cast<std::size_t>(kv_reserved));

  CHECK(fx->state() == engine_state::asleep);
  CHECK(fx->tag_asleep(kv_cache));
  CHECK_FALSE(fx->tag_asleep(weights));
  CHECK_FALSE(fx->tag_asleep(activations));
  check_regions_state(*fx, kv, region_state::discarded);
  check_regions_state(*fx, w, region_state::resident);
  check_regions_state(*fx, act, region_state::resident);
  for (const auto& r : w)
    CHECK_REGION_PATTERN(r, r.id);
  CHECK(fx->statistics().tags.at(kv_cache).reserved.current == 0);
  CHECK_INVARIANTS(fx);

  // weights keeps working: allocate, write, free.
  auto extra = must_allocate(*fx, 7 * MiB, weights);
  fill_region(extra, extra.id);
  CHECK_REGION_PATTERN(extra, extra.id);
  must_free(*fx, w.front().id);
  w.erase(w.begin());
  CHECK_ERROR(fx->allocate({.size = 4096, .tag = kv_cache}), engine_errc::tag_asleep);
  CHECK_INVARIANTS(fx);

  // Sleeping weights now sends the engine wholly to sleep.
  auto policy_w = sleep_policy::level(1);
  policy_w.tags = {weights, activations};
  auto second = must_sleep(*fx, policy_w);
  CHECK(sorted(second.tags) == sorted({weights, activations}));
  w.push_back(extra);
  CHECK(equals_size_or_requested(second.bytes_backed_up, w));
  check_released_everything(fx);
  CHECK_INVARIANTS(fx);

  must_wake(*fx);
  CHECK(fx->state() == engine_state::awake);
  check_woken(*fx, w, [&] {
    auto d = kv;
    d.insert(d.end(), act.begin(), act.end());
    return d;
  }());
  CHECK_INVARIANTS(fx);
}

TEST_CASE("tags wake one at a time; the engine is awake when the last one is", "[engine][wake]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);
  auto kv = with_tag(regions, kv_cache);
  auto act = with_tag(regions, activations);
  must_sleep(*fx, sleep_policy::level(1));

  auto first = must_wake(*fx, {weights});
  CHECK(first.tags == std::vector<std::string>{weights});
  CHECK(equals_size_or_requested(first.bytes_restored, w));
  CHECK(fx->state() == engine_state::asleep);
  CHECK_FALSE(fx->tag_asleep(weights));
  CHECK(fx->tag_asleep(kv_cache));
  CHECK(fx->tag_asleep(activations));
  check_woken(*fx, w, {});
  check_regions_state(*fx, kv, region_state::discarded);
  CHECK_INVARIANTS(fx);
  // weights is usable while kv_cache still sleeps.
  auto extra = must_allocate(*fx, 2 * MiB, weights);
  fill_region(extra, 3);
  CHECK_ERROR(fx->allocate({.size = 4096, .tag = kv_cache}), engine_errc::tag_asleep);

  auto second = must_wake(*fx, {kv_cache});
  CHECK(second.bytes_restored == 0);
  CHECK(fx->state() == engine_state::asleep);  // activations still sleeps
  check_woken(*fx, {}, kv);
  CHECK_INVARIANTS(fx);

  must_wake(*fx, {activations});
  CHECK(fx->state() == engine_state::awake);
  check_woken(*fx, {}, act);
  CHECK_REGION_PATTERN(extra, 3);
  for (const auto& r : w)
    CHECK_REGION_PATTERN(r, r.id);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("wake_up with two named tags wakes both", "[engine][wake]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);
  auto kv = with_tag(regions, kv_cache);
  must_sleep(*fx, sleep_policy::backing_up({weights, kv_cache}));
  auto report = must_wake(*fx, {kv_cache, weights});
  CHECK(sorted(report.tags) == sorted({weights, kv_cache}));
  CHECK(fx->tag_asleep(activations));
  CHECK(fx->state() == engine_state::asleep);
  check_woken(*fx, w, {});
  check_woken(*fx, kv, {});
  CHECK_INVARIANTS(fx);
}

TEST_CASE("transitions the engine's state does not allow are refused and change nothing",
          "[engine][sleep][errors]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);

  SECTION("waking when nothing sleeps") {
    for (const auto& tags :
         {std::vector<std::string>{}, std::vector<std::string>{weights}}) {
      auto before = observable::of(*fx);
      CHECK_ERROR(fx->wake_up(tags), engine_errc::invalid_transition);
      CHECK_UNCHANGED(before, *fx);
    }
    auto before = observable::of(*fx);
    CHECK_ERROR(fx->begin_wake(), engine_errc::invalid_transition);
    CHECK_UNCHANGED(before, *fx);
    CHECK(fx->state() == engine_state::awake);
  }
  SECTION("sleeping again while every tag sleeps") {
    must_sleep(*fx, sleep_policy::level(1));
    for (int level : {1, 2}) {
      auto before = observable::of(*fx);
      auto free_before = fx.device_free();
      CHECK_ERROR(fx->sleep(sleep_policy::level(level)), engine_errc::invalid_transition);
      CHECK_UNCHANGED(before, *fx);
      CHECK(fx.device_free() == free_before);
    }
    auto before = observable::of(*fx);
    CHECK_ERROR(fx->begin_sleep(sleep_policy::level(1)), engine_errc::invalid_transition);
    CHECK_UNCHANGED(before, *fx);
    must_wake(*fx);
    check_woken(*fx, w, {});
  }
  SECTION("waking a tag that does not exist") {
    must_sleep(*fx, sleep_policy::level(1));
    for (const auto& tags : {std::vector<std::string>{"nope"},
                             std::vector<std::string>{weights, "nope"},
                             std::vector<std::string>{""}}) {
      auto before = observable::of(*fx);
      auto usage = fx.usage();
      auto r = fx->wake_up(tags);
      INFO(outcome(r));
      REQUIRE_FALSE(r.ok());
      CHECK((r.error().code() == engine_errc::invalid_transition
             || r.error().code() == engine_errc::invalid_tag));
      CHECK_UNCHANGED(before, *fx);
      CHECK(fx.usage().chunks == usage.chunks);
      CHECK(fx.usage().mappings == usage.mappings);
      CHECK(all_tags_asleep(*fx));
    }
    // A real wake afterwards finds the backups intact.
    must_wake(*fx);
    check_woken(*fx, w, {});
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("regions freed while asleep drop their backups and are gone after wake",
          "[engine][sleep]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);
  auto kv = with_tag(regions, kv_cache);
  auto big_weight = w.front();   // 40 MiB, backed up
  auto big_kv = kv.front();      // 20 MiB, discarded
  must_sleep(*fx, sleep_policy::level(1));
  auto stats_before = fx->statistics().total;

  must_free(*fx, big_weight.id);
  auto at = fx->deallocate_at(big_kv.address);
  INFO(outcome(at));
  REQUIRE(at.ok());
  CHECK_FREED_LOOKUP(fx->region(big_weight.id));
  CHECK_FREED_LOOKUP(fx->region(big_kv.id));
  CHECK_ERROR(fx->deallocate(big_weight.id), engine_errc::double_free);
  CHECK(fx->statistics().total.frees == stats_before.frees + 2);
  CHECK(static_cast<std::size_t>(fx->statistics().total.allocated.current)
        == static_cast<std::size_t>(stats_before.allocated.current) - big_weight.size
             - big_kv.size);
  CHECK(fx->regions().size() == regions.size() - 2);
  CHECK(fx->physical_bytes() == 0);
  CHECK_INVARIANTS(fx);

  w.erase(w.begin());
  kv.erase(kv.begin());
  auto report = must_wake(*fx);
  CHECK(equals_size_or_requested(report.bytes_restored, w));
  CHECK_FREED_LOOKUP(fx->region(big_weight.id));
  CHECK_ERROR(fx->region_at(big_weight.address), engine_errc::unknown_region);
  CHECK(fx->regions().size() == regions.size() - 2);
  check_woken(*fx, w, kv);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("several sleep and wake cycles in a row keep every backed-up byte",
          "[engine][sleep][wake]") {
  fixture fx;
  auto regions = populate(*fx);
  std::map<region_id, std::uint64_t> seeds;
  for (const auto& r : regions)
    seeds[r.id] = r.id;
  std::uint64_t next_seed = 1000;

  struct cycle {
    sleep_policy policy;
    std::vector<std::string> wake_order;  // empty: wake_up() at once
  };
  auto limited = sleep_policy::backing_up({weights, activations});
  limited.tags = {weights, activations};
  std::vector<cycle> cycles = {
    {sleep_policy::level(1), {}},
    {sleep_policy::level(2), {kv_cache, weights, activations}},
    {sleep_policy::backing_up({kv_cache}), {weights, activations, kv_cache}},
    {sleep_policy::backing_up({weights, kv_cache, activations}), {}},
    {limited, {activations, weights}},
    {sleep_policy::level(1), {weights, kv_cache, activations}},
  };
  for (std::size_t c = 0; c < cycles.size(); ++c) {
    INFO("cycle " << c);
    const auto& policy = cycles[c].policy;
    auto live = fx->regions();
    std::set<std::string> sleeping;
    if (policy.tags.empty())
      for (const auto& t : fx->tags())
        sleeping.insert(t);
    else
      sleeping.insert(policy.tags.begin(), policy.tags.end());
    std::set<std::string> keep(policy.backup_tags.begin(), policy.backup_tags.end());

    must_sleep(*fx, policy);
    CHECK_INVARIANTS(fx);
    if (sleeping.size() == fx->tags().size())
      check_released_everything(fx);
    std::vector<region_info> kept, dropped;
    for (const auto& r : live) {
      auto now = fx->region(r.id);
      REQUIRE(now.ok());
      if (!sleeping.count(r.tag)) {
        CHECK(now->state == region_state::resident);
        kept.push_back(r);
      } else if (keep.count(r.tag)) {
        CHECK(now->state == region_state::backed_up);
        kept.push_back(r);
      } else {
        CHECK(now->state == region_state::discarded);
        dropped.push_back(r);
      }
    }
    if (cycles[c].wake_order.empty()) {
      must_wake(*fx);
    } else {
      for (const auto& t : cycles[c].wake_order)
        if (fx->tag_asleep(t))
          must_wake(*fx, {t});
    }
    REQUIRE(fx->state() == engine_state::awake);
    for (const auto& r : kept) {
      CHECK(fx->region(r.id)->address == r.address);
      auto mismatch = region_mismatch(r, seeds[r.id]);
      INFO("region " << r.id << " (" << r.tag << ") differs at "
                     << (mismatch ? std::to_string(*mismatch) : "-"));
      CHECK_FALSE(mismatch.has_value());
    }
    for (const auto& r : dropped) {
      CHECK_FALSE(fx->region(r.id)->contents_defined);
      seeds[r.id] = next_seed++;
      fill_region(r, seeds[r.id]);
    }
    CHECK_INVARIANTS(fx);

    // Between cycles the engine is used: a few new regions, a few freed.
    for (int i = 0; i < 4; ++i) {
      static const std::vector<std::string> tags = {weights, kv_cache, activations};
      const auto& tag = tags[static_cast<std::size_t>(i + static_cast<int>(c)) % 3];
      auto r = must_allocate(*fx, 100 * KiB * static_cast<std::size_t>(i + 1) + c, tag,
                             static_cast<strategy>(i % 3));
      seeds[r.id] = next_seed++;
      fill_region(r, seeds[r.id]);
    }
    auto now = fx->regions();
    must_free(*fx, now[c % now.size()].id);
    seeds.erase(now[c % now.size()].id);
    CHECK_INVARIANTS(fx);
  }
  for (const auto& r : fx->regions())
    CHECK_REGION_PATTERN(r, seeds[r.id]);
}

TEST_CASE("wake admission refuses when the device lacks the memory, and changes nothing",
          "[engine][wake][admission]") {
  fixture fx;
  auto regions = populate(*fx);
  auto w = with_tag(regions, weights);
  auto rest = without_tag(regions, weights);
  must_sleep(*fx, sleep_policy::level(1));
  REQUIRE(fx.device_free() == device_capacity);

  // A second party takes all but 16 MiB of the device.
  auto other = fx.backend.create_chunk(0, device_capacity - 16 * MiB);
  REQUIRE(other.ok());
  auto usage = fx.usage();
  auto failed_before = fx->statistics().failed_transitions;

  for (const auto& tags : {std::vector<std::string>{}, std::vector<std::string>{weights}}) {
    INFO("wake_up of " << tags.size() << " named tags");
    auto before = observable::of(*fx);
    auto r = fx->wake_up(tags);
    CHECK_ERROR(r, engine_errc::insufficient_memory);
    // The message gives the figures.
    const auto& message = r.error().message();
    INFO(message);
    CHECK(std::any_of(message.begin(), message.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
    CHECK_UNCHANGED(before, *fx);
    CHECK(all_tags_asleep(*fx));
    CHECK(fx->state() == engine_state::asleep);
    CHECK(fx->physical_bytes() == 0);
    CHECK(fx.device_free() == 16 * MiB);
    auto now = fx.usage();
    CHECK(now.chunks == usage.chunks);
    CHECK(now.mappings == usage.mappings);
    CHECK(now.physical_bytes == usage.physical_bytes);
    check_regions_state(*fx, w, region_state::backed_up);
    check_regions_state(*fx, rest, region_state::discarded);
  }
  CHECK(fx->statistics().failed_transitions >= failed_before);
  // The step-wise wake is admitted the same way.
  {
    auto before = observable::of(*fx);
    auto begun = fx->begin_wake();
    if (begun.ok()) {
      auto r = finish_transition(*fx);
      CHECK_ERROR(r, engine_errc::insufficient_memory);
    } else {
      CHECK(begun.error().code() == engine_errc::insufficient_memory);
    }
    CHECK_UNCHANGED(before, *fx);
    CHECK(fx.usage().chunks == usage.chunks);
  }

  REQUIRE(fx.backend.release_chunk(*other).ok());
  must_wake(*fx);
  CHECK(fx->state() == engine_state::awake);
  check_woken(*fx, w, rest);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("wake admission keeps config.wake_margin free beyond what it maps",
          "[engine][wake][admission]") {
  // Dedicated regions only, so what a wake maps is exactly their sizes: 24 MiB.
  constexpr std::size_t need = 24 * MiB;
  constexpr std::size_t margin = 32 * MiB;
  auto setup = [&](fixture& fx) {
    std::vector<region_info> out;
    out.push_back(must_allocate(*fx, 8 * MiB, weights, strategy::dedicated));
    out.push_back(must_allocate(*fx, 8 * MiB - 100, weights, strategy::dedicated));
    out.push_back(must_allocate(*fx, 8 * MiB, kv_cache, strategy::dedicated));
    for (const auto& r : out)
      fill_region(r, r.id);
    REQUIRE(fx->physical_bytes() == need);
    must_sleep(*fx, sleep_policy::level(1));
    REQUIRE(fx.device_free() == device_capacity);
    return out;
  };

  SECTION("free memory short of need + margin is refused; exactly need + margin is enough") {
    engine_config config;
    config.wake_margin = margin;
    fixture fx(config);
    CHECK(fx->config().wake_margin == margin);
    auto regions = setup(fx);
    // Free: need + margin / 2 -- enough to map, not enough to keep the margin.
    auto other = fx.backend.create_chunk(0, device_capacity - need - margin / 2);
    REQUIRE(other.ok());
    auto before = observable::of(*fx);
    auto r = fx->wake_up();
    CHECK_ERROR(r, engine_errc::insufficient_memory);
    CHECK_UNCHANGED(before, *fx);
    CHECK(fx.device_free() == need + margin / 2);
    REQUIRE(fx.backend.release_chunk(*other).ok());

    // Free: exactly need + margin.
    other = fx.backend.create_chunk(0, device_capacity - need - margin);
    REQUIRE(other.ok());
    auto woken = fx->wake_up();
    INFO(outcome(woken));
    CHECK(woken.ok());
    if (woken.ok()) {
      check_woken(*fx, with_tag(regions, weights), with_tag(regions, kv_cache));
      CHECK(fx.device_free() == margin);
    }
    REQUIRE(fx.backend.release_chunk(*other).ok());
    CHECK_INVARIANTS(fx);
  }
  SECTION("without a margin the same free memory is enough") {
    fixture fx;
    auto regions = setup(fx);
    auto other = fx.backend.create_chunk(0, device_capacity - need - margin / 2);
    REQUIRE(other.ok());
    must_wake(*fx);
    check_woken(*fx, with_tag(regions, weights), with_tag(regions, kv_cache));
    REQUIRE(fx.backend.release_chunk(*other).ok());
    CHECK_INVARIANTS(fx);
  }
  SECTION("exactly the need is enough without a margin") {
    fixture fx;
    auto regions = setup(fx);
    auto other = fx.backend.create_chunk(0, device_capacity - need);
    REQUIRE(other.ok());
    must_wake(*fx);
    CHECK(fx.device_free() == 0);
    check_woken(*fx, with_tag(regions, weights), with_tag(regions, kv_cache));
    REQUIRE(fx.backend.release_chunk(*other).ok());
  }
}

TEST_CASE("step-wise sleep and wake give the blocking transitions' results",
          "[engine][sleep][wake][transition]") {
  // Two engines with the same regions: one sleeps and wakes blocking, one step-wise.
  fixture blocking;
  fixture stepped;
  auto regions_b = populate(*blocking);
  auto regions_s = populate(*stepped);
  REQUIRE(regions_b.size() == regions_s.size());

  auto policy = sleep_policy::level(1);
  auto sleep_b = must_sleep(*blocking, policy);

  auto begun = stepped->begin_sleep(policy);
  INFO(outcome(begun));
  REQUIRE(begun.ok());
  CHECK(stepped->state() == engine_state::falling_asleep);
  std::set<engine_state> seen;
  int steps = 0;
  auto sleep_s = finish_transition(*stepped, [&] {
    ++steps;
    seen.insert(stepped->state());
    CHECK_ERROR(stepped->allocate({.size = 4096, .tag = activations}),
                engine_errc::transition_in_progress);
    // Observation works mid-transition.
    (void)stepped->statistics().total.allocated.current;
    auto snap = stepped->snapshot();
    CHECK(snap.state == engine_state::falling_asleep);
    (void)stepped->regions();
    (void)stepped->physical_bytes();
  });
  INFO("sleep took " << steps << " extra advance() calls");
  INFO(outcome(sleep_s));
  REQUIRE(sleep_s.ok());
  for (auto s : seen)
    CHECK(s == engine_state::falling_asleep);
  CHECK(sleep_s->kind == core::transition_kind::sleep);
  CHECK(sorted(sleep_s->tags) == sorted(sleep_b.tags));
  CHECK(sleep_s->bytes_backed_up == sleep_b.bytes_backed_up);
  CHECK(sleep_s->bytes_discarded == sleep_b.bytes_discarded);
  CHECK(sleep_s->bytes_released == sleep_b.bytes_released);
  CHECK(stepped->state() == engine_state::asleep);
  check_released_everything(stepped);
  for (std::size_t i = 0; i < regions_s.size(); ++i)
    CHECK(stepped->region(regions_s[i].id)->state == blocking->region(regions_b[i].id)->state);
  CHECK_INVARIANTS(stepped);
  // Once finished, advance() has nothing more to report.
  auto extra = stepped->advance();
  if (extra.has_value())
    CHECK_FALSE(extra->ok());

  auto wake_b = must_wake(*blocking);
  REQUIRE(stepped->begin_wake().ok());
  CHECK(stepped->state() == engine_state::waking);
  seen.clear();
  auto wake_s = finish_transition(*stepped, [&] {
    seen.insert(stepped->state());
    CHECK_ERROR(stepped->allocate({.size = 4096, .tag = weights}),
                engine_errc::transition_in_progress);
    (void)stepped->snapshot();
    (void)stepped->statistics();
  });
  INFO(outcome(wake_s));
  REQUIRE(wake_s.ok());
  for (auto s : seen)
    CHECK(s == engine_state::waking);
  CHECK(wake_s->kind == core::transition_kind::wake);
  CHECK(wake_s->bytes_restored == wake_b.bytes_restored);
  CHECK(wake_s->bytes_mapped == wake_b.bytes_mapped);
  CHECK(stepped->state() == engine_state::awake);
  check_woken(*stepped, with_tag(regions_s, weights), without_tag(regions_s, weights));
  CHECK_INVARIANTS(stepped);
  CHECK_INVARIANTS(blocking);
}

TEST_CASE("a step-wise wake of one tag leaves the others asleep", "[engine][wake][transition]") {
  fixture fx;
  auto regions = populate(*fx);
  must_sleep(*fx, sleep_policy::backing_up({weights, kv_cache}));
  REQUIRE(fx->begin_wake({kv_cache}).ok());
  auto r = finish_transition(*fx);
  INFO(outcome(r));
  REQUIRE(r.ok());
  CHECK(r->tags == std::vector<std::string>{kv_cache});
  CHECK(equals_size_or_requested(r->bytes_restored, with_tag(regions, kv_cache)));
  CHECK(fx->state() == engine_state::asleep);
  CHECK(fx->tag_asleep(weights));
  CHECK_FALSE(fx->tag_asleep(kv_cache));
  check_woken(*fx, with_tag(regions, kv_cache), {});
  CHECK_INVARIANTS(fx);
  must_wake(*fx);
  check_woken(*fx, with_tag(regions, weights), with_tag(regions, activations));
  CHECK_INVARIANTS(fx);
}
