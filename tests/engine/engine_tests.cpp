// The engine's allocation operations and their errors, on a host backend with one
// 256 MiB device of 2 MiB granularity: sizes and alignment, ids, lookups, out of
// memory and its retry, tags, dedicated regions, trim and defragment, and the
// statistics that must agree with all of it.

#include <catch2/catch.hpp>

#include <limits>
#include <set>
#include <string>
#include <vector>

#include "engine/engine_test_support.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;

namespace {

const std::vector<strategy> all_strategies = {strategy::pooled, strategy::first_fit,
                                              strategy::dedicated};

} // namespace

TEST_CASE("a new engine holds no memory, and destroying it returns everything", "[engine]") {
  cuda::host_backend backend(one_device());
  {
    auto e = make_engine(backend);
    CHECK(e->state() == engine_state::awake);
    CHECK(e->regions().empty());
    CHECK(e->physical_bytes() == 0);
    CHECK(e->device() == 0);
    CHECK(e->fragmentation() == 0.0);
    CHECK(e->statistics().total.allocations == 0);
    auto usage = backend.current_usage();
    CHECK(usage.reservations >= 1);  // the arena
    CHECK(usage.chunks == 0);
    CHECK(usage.mappings == 0);

    auto a = must_allocate(*e, 3 * MiB, weights);
    auto b = must_allocate(*e, 1000, kv_cache, strategy::first_fit);
    auto c = must_allocate(*e, 5 * MiB, activations, strategy::dedicated);
    fill_region(a, 1);
    fill_region(b, 2);
    fill_region(c, 3);
    CHECK(backend.current_usage().chunks > 0);
  }
  auto usage = backend.current_usage();
  CHECK(usage.reservations == 0);
  CHECK(usage.chunks == 0);
  CHECK(usage.mappings == 0);
  CHECK(usage.physical_bytes == 0);
  CHECK(backend.memory(0)->free == backend.memory(0)->total);
}

TEST_CASE("allocate returns a resident region with the requested properties", "[engine]") {
  fixture fx;
  for (auto how : all_strategies) {
    for (std::size_t size : {std::size_t{1}, std::size_t{255}, std::size_t{256},
                             std::size_t{1000}, std::size_t{64 * KiB + 3}, std::size_t{1 * MiB},
                             std::size_t{1 * MiB + 1}, std::size_t{3 * MiB + 17},
                             std::size_t{8 * MiB}}) {
      INFO(core::to_string(how) << " of " << size << " B");
      auto r = must_allocate(*fx, size, kv_cache, how);
      CHECK(r.id != 0);
      CHECK(r.requested == size);
      CHECK(r.size >= size);
      if (how == strategy::dedicated) {
        CHECK(r.size == cuda::round_up(size, device_granularity));
      } else {
        CHECK(r.size % 256 == 0);
        CHECK(r.size == cuda::round_up(size, 256));
      }
      CHECK(r.address != 0);
      CHECK(r.address % default_alignment == 0);
      CHECK(fx->tag_name(r.tag) == kv_cache);
      CHECK(r.how == how);
      CHECK(r.state == region_state::resident);
      CHECK(r.contents_defined);
      // The bytes are real, writable memory.
      fill_region(r, r.id);
      CHECK_REGION_PATTERN(r, r.id);
      // region() says the same as allocate() did.
      auto again = fx->region(r.id);
      REQUIRE(again.ok());
      CHECK(again->address == r.address);
      CHECK(again->size == r.size);
      CHECK(again->requested == r.requested);
      CHECK(again->tag == r.tag);
      CHECK(again->how == r.how);
      CHECK(again->state == region_state::resident);
    }
  }
  // Nothing overlaps, and every pattern survived its neighbours' writes.
  auto regions = fx->regions();
  std::sort(regions.begin(), regions.end(),
            [](const region_info& a, const region_info& b) { return a.address < b.address; });
  for (std::size_t i = 1; i < regions.size(); ++i)
    CHECK(regions[i - 1].address + regions[i - 1].size <= regions[i].address);
  for (const auto& r : regions)
    CHECK_REGION_PATTERN(r, r.id);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("the default tag is used when none is named", "[engine]") {
  fixture fx;
  auto r = fx->allocate({.size = 4096});
  REQUIRE(r.ok());
  CHECK(fx->tag_name(r->tag) == std::string(core::default_tag));
  CHECK(r->how == strategy::pooled);
}

TEST_CASE("region ids start at 1, increase and are never reused", "[engine]") {
  fixture fx;
  std::set<region_id> issued;
  region_id last = 0;
  for (int round = 0; round < 50; ++round) {
    auto how = all_strategies[static_cast<std::size_t>(round) % 3];
    auto r = must_allocate(*fx, 1000 + static_cast<std::size_t>(round) * 4096, weights, how);
    if (round == 0)
      CHECK(r.id == 1);
    CHECK(r.id > last);
    CHECK(issued.insert(r.id).second);
    last = r.id;
    if (round % 2 == 0)
      must_free(*fx, r.id);  // freeing must not make the id available again
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("allocate rejects a zero size", "[engine][errors]") {
  fixture fx;
  must_allocate(*fx, 4096, weights);
  for (auto how : all_strategies) {
    auto before = observable::of(*fx);
    auto r = fx->allocate({.size = 0, .tag = weights, .how = how});
    CHECK_ERROR(r, engine_errc::zero_size);
    CHECK_UNCHANGED(before, *fx);
  }
  CHECK(fx->statistics().ooms == 0);
}

TEST_CASE("allocate rejects a size beyond the device's memory", "[engine][errors]") {
  fixture fx;
  must_allocate(*fx, 4096, weights);
  for (auto how : all_strategies) {
    for (std::size_t size : {device_capacity + 1, device_capacity + 2 * MiB, 2 * device_capacity,
                             std::numeric_limits<std::size_t>::max(),
                             std::numeric_limits<std::size_t>::max() - 255}) {
      INFO(core::to_string(how) << " of " << size << " B");
      auto before = observable::of(*fx);
      auto r = fx->allocate({.size = size, .tag = weights, .how = how});
      CHECK_ERROR(r, engine_errc::too_large);
      CHECK_UNCHANGED(before, *fx);
    }
  }
  CHECK(fx->statistics().ooms == 0);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a request of exactly the device's memory fits an empty engine", "[engine]") {
  for (auto how : all_strategies) {
    INFO(core::to_string(how));
    fixture fx;
    auto r = must_allocate(*fx, device_capacity, weights, how);
    CHECK(r.size == device_capacity);
    CHECK(fx->physical_bytes() == device_capacity);
    fill_pattern(r.address + device_capacity - 4096, 4096, 7);  // the last page is there
    CHECK_INVARIANTS(fx);
    must_free(*fx, r.id);
    fx->trim();
    CHECK(fx->physical_bytes() == 0);
  }
}

TEST_CASE("alignment: 0 is the default, powers of two up to the granularity are honoured",
          "[engine]") {
  fixture fx;
  for (auto how : all_strategies) {
    for (std::size_t alignment = 1; alignment <= device_granularity; alignment *= 2) {
      INFO(core::to_string(how) << " aligned to " << alignment);
      // An odd size first, so the next block does not start aligned by accident.
      must_allocate(*fx, 300, activations, how);
      auto r = must_allocate(*fx, 5000, activations, how, alignment);
      CHECK(r.address % alignment == 0);
      CHECK(r.address % default_alignment == 0);
      fill_region(r, 11);
      CHECK_REGION_PATTERN(r, 11);
    }
    auto r = must_allocate(*fx, 777, activations, how, 0);
    CHECK(r.address % default_alignment == 0);
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("allocate rejects an alignment that is no power of two or beyond the granularity",
          "[engine][errors]") {
  fixture fx;
  must_allocate(*fx, 4096, weights);
  for (auto how : all_strategies) {
    for (std::size_t alignment :
         {std::size_t{3}, std::size_t{384}, std::size_t{1000}, std::size_t{3 * MiB},
          std::size_t{4 * MiB}, std::size_t{1} << 40, std::size_t{1} << 63,
          std::numeric_limits<std::size_t>::max()}) {
      INFO(core::to_string(how) << " aligned to " << alignment);
      auto before = observable::of(*fx);
      auto r = fx->allocate({.size = 4096, .tag = weights, .how = how, .alignment = alignment});
      CHECK_ERROR(r, engine_errc::invalid_alignment);
      CHECK_UNCHANGED(before, *fx);
    }
  }
}

TEST_CASE("allocate rejects an empty tag", "[engine][errors]") {
  fixture fx;
  must_allocate(*fx, 4096, weights);
  for (auto how : all_strategies) {
    auto before = observable::of(*fx);
    auto r = fx->allocate({.size = 4096, .tag = "", .how = how});
    CHECK_ERROR(r, engine_errc::invalid_tag);
    CHECK_UNCHANGED(before, *fx);
  }
}

TEST_CASE("parse_strategy knows the three strategies and nothing else", "[engine]") {
  for (auto how : all_strategies) {
    auto parsed = core::parse_strategy(core::to_string(how));
    REQUIRE(parsed.ok());
    CHECK(*parsed == how);
  }
  CHECK(*core::parse_strategy("pooled") == strategy::pooled);
  CHECK(*core::parse_strategy("first_fit") == strategy::first_fit);
  CHECK(*core::parse_strategy("dedicated") == strategy::dedicated);
  for (const char* name : {"", "Pooled", "pool", "first-fit", "firstfit", "dedicated ", "best_fit",
                           "unknown"}) {
    INFO("'" << name << "'");
    auto parsed = core::parse_strategy(name);
    CHECK_ERROR(parsed, engine_errc::unknown_strategy);
  }
}

TEST_CASE("deallocate frees a region; unknown ids and double frees change nothing",
          "[engine][errors]") {
  fixture fx;
  auto a = must_allocate(*fx, 10000, weights);
  auto b = must_allocate(*fx, 3 * MiB, weights, strategy::dedicated);
  auto c = must_allocate(*fx, 500, kv_cache, strategy::first_fit);
  fill_region(a, 1);
  fill_region(c, 3);

  must_free(*fx, b.id);
  CHECK_FALSE(fx->region(b.id).ok());
  CHECK(fx->regions().size() == 2);
  CHECK_INVARIANTS(fx);

  SECTION("an id never issued") {
    for (region_id id : {c.id + 1, c.id + 1000,
                         std::numeric_limits<region_id>::max()}) {
      INFO("id " << id);
      auto before = observable::of(*fx);
      CHECK_ERROR(fx->deallocate(id), engine_errc::unknown_region);
      CHECK_UNCHANGED(before, *fx);
    }
  }
  SECTION("an id already freed") {
    auto before = observable::of(*fx);
    CHECK_ERROR(fx->deallocate(b.id), engine_errc::double_free);
    CHECK_UNCHANGED(before, *fx);
    must_free(*fx, a.id);
    before = observable::of(*fx);
    CHECK_ERROR(fx->deallocate(a.id), engine_errc::double_free);
    CHECK_UNCHANGED(before, *fx);
  }
  // The survivors are untouched.
  CHECK_REGION_PATTERN(c, 3);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("deallocate_at frees the region starting at the address, and only that",
          "[engine][errors]") {
  fixture fx;
  auto a = must_allocate(*fx, 10000, weights);
  auto b = must_allocate(*fx, 4 * MiB, weights, strategy::dedicated);
  auto c = must_allocate(*fx, 2 * MiB + 5, kv_cache, strategy::first_fit);
  fill_region(a, 1);
  fill_region(b, 2);
  fill_region(c, 3);

  for (device_ptr wrong : {a.address + 1, a.address + 256, a.address + a.size - 1,
                           b.address + 2 * MiB, c.address + c.size - 1,
                           device_ptr{12345}}) {
    INFO("address " << wrong);
    auto before = observable::of(*fx);
    CHECK_ERROR(fx->deallocate_at(wrong), engine_errc::unknown_region);
    CHECK_UNCHANGED(before, *fx);
  }
  auto freed = fx->deallocate_at(b.address);
  INFO(outcome(freed));
  REQUIRE(freed.ok());
  CHECK_FALSE(fx->region(b.id).ok());
  CHECK_FALSE(fx->region_at(b.address).ok());
  REQUIRE(fx->deallocate_at(a.address).ok());
  CHECK(fx->regions().size() == 1);
  CHECK(fx->regions().front().id == c.id);
  // A freed address names no region any more.
  auto before = observable::of(*fx);
  auto again = fx->deallocate_at(a.address);
  REQUIRE_FALSE(again.ok());
  CHECK((again.error().code() == engine_errc::unknown_region
         || again.error().code() == engine_errc::double_free));
  CHECK_UNCHANGED(before, *fx);
  CHECK_REGION_PATTERN(c, 3);
  CHECK(fx->statistics().total.frees == 2);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("region and region_at find live regions by id and by any inner address", "[engine]") {
  fixture fx;
  std::vector<region_info> made;
  for (auto how : all_strategies)
    for (std::size_t size : {std::size_t{100}, std::size_t{70 * KiB}, std::size_t{3 * MiB + 1}})
      made.push_back(must_allocate(*fx, size, how == strategy::first_fit ? kv_cache : weights,
                                   how));
  for (const auto& r : made) {
    INFO("region " << r.id);
    auto by_id = fx->region(r.id);
    REQUIRE(by_id.ok());
    CHECK(by_id->address == r.address);
    for (device_ptr inner : {r.address, r.address + 1, r.address + r.requested / 2,
                             r.address + r.requested - 1, r.address + r.size - 1}) {
      auto at = fx->region_at(inner);
      INFO("address +" << inner - r.address << ": " << outcome(at));
      REQUIRE(at.ok());
      CHECK(at->id == r.id);
    }
  }
  CHECK_ERROR(fx->region(made.back().id + 1), engine_errc::unknown_region);
  CHECK_ERROR(fx->region_at(1), engine_errc::unknown_region);

  must_free(*fx, made[4].id);
  CHECK_FREED_LOOKUP(fx->region(made[4].id));
  CHECK_ERROR(fx->region_at(made[4].address), engine_errc::unknown_region);
}

TEST_CASE("id 0 and address 0 name no region", "[engine][errors]") {
  // Ids start at 1: 0 is never issued, and no region starts at (or contains) address 0.
  fixture fx;
  auto a = must_allocate(*fx, 10000, weights);
  auto b = must_allocate(*fx, 3 * MiB, kv_cache, strategy::dedicated);
  fill_region(a, 1);
  auto before = observable::of(*fx);
  CHECK_ERROR(fx->region(0), engine_errc::unknown_region);
  CHECK_ERROR(fx->region_at(0), engine_errc::unknown_region);
  CHECK_ERROR(fx->touch(0), engine_errc::unknown_region);
  CHECK_UNCHANGED(before, *fx);
  SECTION("deallocate(0)") {
    CHECK_ERROR(fx->deallocate(0), engine_errc::unknown_region);
    CHECK_UNCHANGED(before, *fx);
  }
  SECTION("deallocate_at(0)") {
    CHECK_ERROR(fx->deallocate_at(0), engine_errc::unknown_region);
    CHECK_UNCHANGED(before, *fx);
  }
  // Both regions are still there and can be freed once each.
  must_free(*fx, a.id);
  must_free(*fx, b.id);
  CHECK(fx->statistics().total.frees == 2);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("regions lists live regions in id order, optionally for one tag", "[engine]") {
  fixture fx;
  std::vector<region_id> w, k;
  for (int i = 0; i < 12; ++i) {
    auto tag = i % 3 == 0 ? kv_cache : weights;
    auto r = must_allocate(*fx, 1000 * static_cast<std::size_t>(i + 1), tag,
                           all_strategies[static_cast<std::size_t>(i) % 3]);
    (tag == weights ? w : k).push_back(r.id);
  }
  must_free(*fx, w[1]);
  w.erase(w.begin() + 1);
  auto ids = [](const std::vector<region_info>& rs) {
    std::vector<region_id> out;
    for (const auto& r : rs)
      out.push_back(r.id);
    return out;
  };
  CHECK(ids(fx->regions(weights)) == w);
  CHECK(ids(fx->regions(kv_cache)) == k);
  CHECK(fx->regions("nothing").empty());
  auto all = ids(fx->regions());
  CHECK(std::is_sorted(all.begin(), all.end()));
  CHECK(all.size() == w.size() + k.size());
}

TEST_CASE("touch renews last_use_ns; an unknown id is an error", "[engine]") {
  fixture fx;
  auto r = must_allocate(*fx, 4096, weights);
  auto before = fx->region(r.id)->last_use_ns;
  CHECK(before > 0);
  auto t = fx->touch(r.id);
  INFO(outcome(t));
  REQUIRE(t.ok());
  auto after = fx->region(r.id)->last_use_ns;
  CHECK(after >= before);
  REQUIRE(fx->touch(r.id).ok());
  CHECK(fx->region(r.id)->last_use_ns >= after);

  CHECK_ERROR(fx->touch(r.id + 100), engine_errc::unknown_region);
  must_free(*fx, r.id);
  CHECK_FREED_LOOKUP(fx->touch(r.id));
}

TEST_CASE("out of memory names the figures and counts; nothing changes", "[engine][oom]") {
  fixture fx;
  auto big = must_allocate(*fx, 200 * MiB, weights);
  fill_region(big, 5);
  CHECK_STATISTICS(fx);

  for (auto how : all_strategies) {
    INFO(core::to_string(how));
    auto ooms = fx->statistics().ooms;
    auto before = observable::of(*fx);
    auto r = fx->allocate({.size = 100 * MiB, .tag = kv_cache, .how = how});
    CHECK_ERROR(r, engine_errc::out_of_memory);
    const auto& message = r.error().message();
    CHECK_THAT(message, Catch::Contains("requested") && Catch::Contains("allocated")
                          && Catch::Contains("reserved") && Catch::Contains("free"));
    CHECK(fx->statistics().ooms == ooms + 1);
    CHECK_UNCHANGED(before, *fx);
    CHECK_STATISTICS(fx);
  }
  // The same tag cannot grow past the device either.
  auto r = fx->allocate({.size = 60 * MiB, .tag = weights});
  CHECK_ERROR(r, engine_errc::out_of_memory);
  CHECK(fx->statistics().ooms == 4);
  CHECK(fx->statistics().oom_retries == 0);
  CHECK_REGION_PATTERN(big, 5);
  // What still fits, fits.
  must_allocate(*fx, 40 * MiB, kv_cache);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a request that needs the memory of cached segments reuses their chunks",
          "[engine][oom]") {
  fixture fx;
  auto big = must_allocate(*fx, 200 * MiB, weights);
  must_free(*fx, big.id);
  // The empty segment stays cached (until it has been idle for cache_decay).
  CHECK(fx->statistics().total.cached.current > 0);
  CHECK(fx->physical_bytes() >= 200 * MiB);
  CHECK_STATISTICS(fx);

  // Another tag cannot use weights' segment; it needs the device memory back.
  auto r = fx->allocate({.size = 100 * MiB, .tag = kv_cache});
  INFO(outcome(r));
  REQUIRE(r.ok());
  fill_region(*r, 9);
  CHECK_REGION_PATTERN(*r, 9);
  // The cached segment's chunks are mapped for kv_cache before any new chunk is made,
  // so the device never ran out: no out-of-memory, no retry.
  CHECK(fx->statistics().chunks_reused > 0);
  CHECK(fx->statistics().oom_retries == 0);
  CHECK(fx->statistics().ooms == 0);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("regions of different tags never share a segment", "[engine][tags]") {
  fixture fx;
  const std::vector<std::string> tags = {weights, kv_cache, activations};
  for (int i = 0; i < 90; ++i) {
    const auto& tag = tags[static_cast<std::size_t>(i) % 3];
    std::size_t size = (i % 5 == 0) ? 3 * MiB + 100 : 700 + static_cast<std::size_t>(i) * 333;
    auto how = i % 2 == 0 ? strategy::pooled : strategy::first_fit;
    must_allocate(*fx, size, tag, how);
  }
  auto snap = fx->snapshot();
  std::map<region_id, std::string> tag_of;
  for (const auto& r : fx->regions())
    tag_of[r.id] = fx->tag_name(r.tag);
  for (const auto& seg : snap.segments)
    for (const auto& b : seg.blocks)
      if (b.allocated) {
        INFO("segment at " << seg.address << " of tag " << seg.tag << " holds region "
                           << b.region);
        CHECK(tag_of[b.region] == seg.tag);
      }
  for (const auto& tag : tags) {
    auto& g = fx->statistics().tags.at(tag);
    CHECK(g.allocations == 30);
    CHECK(g.reserved.current > 0);
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("a dedicated region returns its physical memory when freed", "[engine][dedicated]") {
  fixture fx;
  auto small = must_allocate(*fx, 4096, weights);
  auto base_physical = fx->physical_bytes();
  auto d = must_allocate(*fx, 9 * MiB + 1, weights, strategy::dedicated);
  CHECK(d.size == 10 * MiB);
  CHECK(d.address % device_granularity == 0);
  CHECK(fx->physical_bytes() == base_physical + d.size);
  fill_region(d, 4);
  CHECK_INVARIANTS(fx);

  auto free_before = fx.device_free();
  must_free(*fx, d.id);
  CHECK(fx->physical_bytes() == base_physical);
  CHECK(fx.device_free() == free_before + d.size);
  CHECK(fx->statistics().total.cached.current == 0);
  CHECK_INVARIANTS(fx);
  (void)small;
}

TEST_CASE("statistics follow allocations and frees, with peaks", "[engine][statistics]") {
  fixture fx;
  std::vector<region_info> live;
  std::size_t peak_allocated = 0, allocated = 0;
  std::map<std::string, std::uint64_t> allocations, frees;
  for (int i = 0; i < 60; ++i) {
    auto tag = i % 4 == 0 ? kv_cache : weights;
    auto how = all_strategies[static_cast<std::size_t>(i) % 3];
    auto r = must_allocate(*fx, 1 + static_cast<std::size_t>(i) * 37 * KiB, tag, how);
    live.push_back(r);
    allocations[tag]++;
    allocated += r.size;
    peak_allocated = std::max(peak_allocated, allocated);
    if (i % 3 == 2) {
      auto victim = live[static_cast<std::size_t>(i) % live.size()];
      must_free(*fx, victim.id);
      frees[fx->tag_name(victim.tag)]++;
      allocated -= victim.size;
      live.erase(std::find_if(live.begin(), live.end(),
                              [&](const region_info& x) { return x.id == victim.id; }));
    }
    CHECK_STATISTICS(fx);
  }
  const auto& st = fx->statistics();
  CHECK(st.total.allocations == 60);
  CHECK(st.total.frees == 20);
  for (const auto& [tag, n] : allocations) {
    CHECK(st.tags.at(tag).allocations == n);
    CHECK(st.tags.at(tag).frees == frees[tag]);
  }
  CHECK(static_cast<std::size_t>(st.total.allocated.current) == allocated);
  CHECK(static_cast<std::size_t>(st.total.allocated.peak) == peak_allocated);
  CHECK(st.total.reserved.peak >= st.total.reserved.current);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("after freeing everything, trim returns all physical memory", "[engine][trim]") {
  fixture fx;
  std::vector<region_id> ids;
  for (int i = 0; i < 40; ++i) {
    auto how = all_strategies[static_cast<std::size_t>(i) % 3];
    auto tag = i % 2 ? weights : activations;
    ids.push_back(must_allocate(*fx, 1 + static_cast<std::size_t>(i) * 211 * KiB, tag, how).id);
  }
  for (auto id : ids)
    must_free(*fx, id);
  CHECK(fx->regions().empty());
  CHECK(fx->statistics().total.allocated.current == 0);
  CHECK(fx->statistics().total.active.current == 0);
  CHECK_INVARIANTS(fx);
  auto before = fx->physical_bytes();
  CHECK(static_cast<std::size_t>(fx->statistics().total.cached.current) == before);

  auto report = fx->trim();
  CHECK(report.bytes_released == before);
  CHECK((before == 0 || report.segments_released > 0));
  CHECK(fx->physical_bytes() == 0);
  CHECK(fx.device_free() == fx.device_total());
  CHECK(fx->statistics().total.cached.current == 0);
  CHECK(fx->statistics().total.reserved.current == 0);
  CHECK(fx->fragmentation() == 0.0);
  CHECK_INVARIANTS(fx);
  // Trimming again is harmless; the engine is still usable.
  auto second = fx->trim();
  CHECK(second.bytes_released == 0);
  auto r = must_allocate(*fx, 5 * MiB, weights);
  fill_region(r, 1);
  CHECK_REGION_PATTERN(r, 1);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("trim keeps live regions and releases only cached segments", "[engine][trim]") {
  fixture fx;
  std::vector<region_info> keep;
  std::vector<region_id> drop;
  for (int i = 0; i < 30; ++i) {
    auto r = must_allocate(*fx, 2 * MiB + static_cast<std::size_t>(i) * 4096,
                           i % 2 ? weights : kv_cache);
    fill_region(r, r.id);
    if (i < 10)
      keep.push_back(r);
    else
      drop.push_back(r.id);
  }
  for (auto id : drop)
    must_free(*fx, id);
  auto physical = fx->physical_bytes();
  auto cached = fx->statistics().total.cached.current;
  auto report = fx->trim();
  CHECK(fx->physical_bytes() == physical - report.bytes_released);
  CHECK(static_cast<std::int64_t>(report.bytes_released) == cached);
  CHECK(fx->statistics().total.cached.current == 0);
  CHECK(fx->regions().size() == keep.size());
  for (const auto& r : keep) {
    auto now = fx->region(r.id);
    REQUIRE(now.ok());
    CHECK(now->address == r.address);
    CHECK_REGION_PATTERN(r, r.id);
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("defragment releases what it can without moving live regions", "[engine][defragment]") {
  fixture fx;
  std::vector<region_info> regions;
  for (int i = 0; i < 80; ++i) {
    auto how = all_strategies[static_cast<std::size_t>(i) % 3];
    std::size_t size = (i % 4 == 0) ? 3 * MiB + static_cast<std::size_t>(i) : 40 * KiB + static_cast<std::size_t>(i) * 1000;
    auto r = must_allocate(*fx, size, i % 2 ? weights : kv_cache, how);
    fill_region(r, 1000 + r.id);
    regions.push_back(r);
  }
  // Free every other region, and the last ones entirely, to leave holes and tails.
  std::vector<region_info> live;
  for (std::size_t i = 0; i < regions.size(); ++i) {
    if (i % 2 == 1 || i >= 60)
      must_free(*fx, regions[i].id);
    else
      live.push_back(regions[i]);
  }
  CHECK_INVARIANTS(fx);
  auto fragmentation = fx->fragmentation();
  auto physical = fx->physical_bytes();
  auto defragmentations = fx->statistics().defragmentations;

  auto report = fx->defragment();
  CHECK(report.fragmentation_before == Approx(fragmentation).margin(1e-9));
  CHECK(report.fragmentation_after <= report.fragmentation_before + 1e-12);
  CHECK(report.fragmentation_after == Approx(fx->fragmentation()).margin(1e-9));
  CHECK(fx->physical_bytes()
        == physical - report.bytes_released_cached - report.bytes_released_tails);
  CHECK(fx->statistics().defragmentations == defragmentations + 1);
  CHECK(fx->statistics().total.cached.current == 0);
  auto now = fx->regions();
  REQUIRE(now.size() == live.size());
  for (std::size_t i = 0; i < live.size(); ++i) {
    CHECK(now[i].id == live[i].id);
    CHECK(now[i].address == live[i].address);
    CHECK(now[i].size == live[i].size);
    CHECK(now[i].state == region_state::resident);
    CHECK_REGION_PATTERN(live[i], 1000 + live[i].id);
  }
  CHECK_INVARIANTS(fx);
  // The engine allocates normally afterwards.
  for (int i = 0; i < 10; ++i) {
    auto r = must_allocate(*fx, 100 * KiB + static_cast<std::size_t>(i), weights);
    fill_region(r, 5);
  }
  for (const auto& r : live)
    CHECK_REGION_PATTERN(r, 1000 + r.id);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("allocate during a transition is refused until advance() finishes it",
          "[engine][errors][transition]") {
  fixture fx;
  auto r = must_allocate(*fx, 3 * MiB, weights);
  fill_region(r, 1);
  must_allocate(*fx, 1 * MiB, kv_cache);

  auto begun = fx->begin_sleep(sleep_policy::level(1));
  INFO(outcome(begun));
  REQUIRE(begun.ok());
  CHECK(fx->state() == engine_state::falling_asleep);
  for (const auto& tag : {weights, kv_cache, activations}) {
    auto during = fx->allocate({.size = 4096, .tag = tag});
    CHECK_ERROR(during, engine_errc::transition_in_progress);
  }
  auto done = finish_transition(*fx);
  INFO(outcome(done));
  REQUIRE(done.ok());
  CHECK(fx->state() == engine_state::asleep);
  // Asleep now: the sleeping tags refuse.
  CHECK_ERROR(fx->allocate({.size = 4096, .tag = weights}), engine_errc::tag_asleep);

  REQUIRE(fx->begin_wake().ok());
  CHECK(fx->state() == engine_state::waking);
  CHECK_ERROR(fx->allocate({.size = 4096, .tag = weights}), engine_errc::transition_in_progress);
  auto woke = finish_transition(*fx);
  INFO(outcome(woke));
  REQUIRE(woke.ok());
  CHECK(fx->state() == engine_state::awake);
  CHECK(fx->allocate({.size = 4096, .tag = weights}).ok());
  CHECK_REGION_PATTERN(r, 1);
  CHECK_INVARIANTS(fx);
}

TEST_CASE("allocate into a sleeping tag is refused; other tags still allocate",
          "[engine][errors]") {
  fixture fx;
  must_allocate(*fx, 3 * MiB, weights);
  must_allocate(*fx, 3 * MiB, kv_cache);
  sleep_policy policy = sleep_policy::level(1);
  policy.tags = {kv_cache};
  auto slept = fx->sleep(policy);
  INFO(outcome(slept));
  REQUIRE(slept.ok());
  for (auto how : all_strategies) {
    auto before = observable::of(*fx);
    CHECK_ERROR(fx->allocate({.size = 4096, .tag = kv_cache, .how = how}),
                engine_errc::tag_asleep);
    CHECK_UNCHANGED(before, *fx);
    CHECK(fx->allocate({.size = 4096, .tag = weights, .how = how}).ok());
  }
  CHECK_INVARIANTS(fx);
}

TEST_CASE("advance() with no transition under way finishes nothing", "[engine][transition]") {
  fixture fx;
  must_allocate(*fx, 4096, weights);
  auto before = observable::of(*fx);
  auto r = fx->advance();
  // Either nothing to report or an error; never a transition that did not happen.
  if (r.has_value())
    CHECK_FALSE(r->ok());
  CHECK_UNCHANGED(before, *fx);
}
