// Snapshots: what engine::snapshot() reports, the documented JSON form of it
// (docs/snapshot.md), the round trip through to_json and from_json, and the errors
// from_json gives for malformed documents.

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpumem/core/engine.hpp"
#include "gpumem/core/snapshot.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::core;
using json = nlohmann::json;

namespace {

cuda::host_backend_config one_device(std::size_t capacity) {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{capacity, 2 * MiB, 2 * MiB}};
  return config;
}

/// An engine with regions in three tags and every strategy, some of them freed.
struct populated_engine {
  cuda::host_backend backend{one_device(512 * MiB)};
  std::unique_ptr<engine> e;
  std::vector<region_info> live;

  populated_engine() {
    auto created = engine::create(backend);
    REQUIRE(created.ok());
    e = std::move(*created);

    std::vector<region_info> all;
    auto take = [&](allocation_request request) {
      auto r = e->allocate(request);
      INFO(request.tag << " " << request.size << ": "
                       << (r.ok() ? std::string("ok") : r.error().to_string()));
      REQUIRE(r.ok());
      all.push_back(*r);
    };
    take({.size = 40 * MiB, .tag = "weights"});
    take({.size = 6 * MiB + 1, .tag = "weights", .how = strategy::dedicated});
    take({.size = 3 * MiB, .tag = "weights"});
    take({.size = 1000, .tag = "kv_cache"});
    take({.size = 64 * KiB, .tag = "kv_cache", .how = strategy::first_fit});
    take({.size = 300 * KiB, .tag = "kv_cache"});
    take({.size = 4 * KiB, .tag = "kv_cache", .alignment = 4 * KiB});
    take({.size = 2 * MiB, .tag = "kv_cache", .how = strategy::first_fit});
    take({.size = 256, .tag = "activations"});
    take({.size = 5 * MiB, .tag = "activations", .how = strategy::dedicated});
    take({.size = 777, .tag = "activations", .how = strategy::first_fit});

    // Free one of each kind so segments hold free blocks between live ones.
    for (std::size_t i : {2u, 4u, 9u}) {
      auto freed = e->deallocate(all[i].id);
      INFO((freed.ok() ? std::string("ok") : freed.error().to_string()));
      REQUIRE(freed.ok());
    }
    REQUIRE(e->touch(all[0].id).ok());
    live = e->regions();
    REQUIRE(live.size() == all.size() - 3);
  }

  /// Level-style sleep of kv_cache alone: its bytes are discarded.
  void sleep_kv_cache() {
    sleep_policy policy;
    policy.backup_tags = {};
    policy.tags = {"kv_cache"};
    auto slept = e->sleep(policy);
    INFO((slept.ok() ? std::string("ok") : slept.error().to_string()));
    REQUIRE(slept.ok());
  }
};

void check_same_stat(const stat& a, const stat& b) {
  CHECK(a.current == b.current);
  CHECK(a.peak == b.peak);
  CHECK(a.allocated == b.allocated);
  CHECK(a.freed == b.freed);
}

void check_same_grid(const stat_grid& a, const stat_grid& b) {
  check_same_stat(a.allocated, b.allocated);
  check_same_stat(a.requested, b.requested);
  check_same_stat(a.active, b.active);
  check_same_stat(a.reserved, b.reserved);
  check_same_stat(a.cached, b.cached);
  CHECK(a.allocations == b.allocations);
  CHECK(a.frees == b.frees);
}

void check_same_statistics(const engine_statistics& a, const engine_statistics& b) {
  {
    INFO("statistics.total");
    check_same_grid(a.total, b.total);
  }
  REQUIRE(a.tags.size() == b.tags.size());
  for (const auto& [tag, grid] : a.tags) {
    INFO("statistics.tags." << tag);
    REQUIRE(b.tags.count(tag) == 1);
    check_same_grid(grid, b.tags.at(tag));
  }
  CHECK(a.ooms == b.ooms);
  CHECK(a.oom_retries == b.oom_retries);
  CHECK(a.segments_created == b.segments_created);
  CHECK(a.segments_released == b.segments_released);
  CHECK(a.chunks_created == b.chunks_created);
  CHECK(a.chunks_reused == b.chunks_reused);
  CHECK(a.chunks_released == b.chunks_released);
  CHECK(a.sleeps == b.sleeps);
  CHECK(a.wakes == b.wakes);
  CHECK(a.failed_transitions == b.failed_transitions);
  CHECK(a.bytes_backed_up == b.bytes_backed_up);
  CHECK(a.bytes_restored == b.bytes_restored);
  CHECK(a.bytes_discarded == b.bytes_discarded);
  CHECK(a.sleep_seconds == b.sleep_seconds);  // exact: JSON keeps 17 digits
  CHECK(a.wake_seconds == b.wake_seconds);
  CHECK(a.trims == b.trims);
  CHECK(a.defragmentations == b.defragmentations);
  CHECK(a.bytes_trimmed == b.bytes_trimmed);
}

void check_same_region(const snapshot_region& a, const snapshot_region& b) {
  INFO("region " << a.id);
  CHECK(a.id == b.id);
  CHECK(a.address == b.address);
  CHECK(a.size == b.size);
  CHECK(a.requested == b.requested);
  CHECK(a.tag == b.tag);
  CHECK(a.how == b.how);
  CHECK(a.state == b.state);
  CHECK(a.contents_defined == b.contents_defined);
  CHECK(a.last_use_ns == b.last_use_ns);
}

/// A snapshot's region against the live region of `e` it describes.
void check_same_region(const snapshot_region& a, const region_info& b, const engine& e) {
  INFO("region " << a.id);
  CHECK(a.id == b.id);
  CHECK(a.address == b.address);
  CHECK(a.size == b.size);
  CHECK(a.requested == b.requested);
  CHECK(a.tag == e.tag_name(b.tag));
  CHECK(a.how == b.how);
  CHECK(a.state == b.state);
  CHECK(a.contents_defined == b.contents_defined);
  CHECK(a.last_use_ns == b.last_use_ns);
}

void check_same_snapshot(const memory_snapshot& a, const memory_snapshot& b) {
  CHECK(a.device == b.device);
  CHECK(a.backend == b.backend);
  CHECK(a.arena_base == b.arena_base);
  CHECK(a.arena_size == b.arena_size);
  CHECK(a.state == b.state);
  CHECK(a.tag_states == b.tag_states);
  REQUIRE(a.segments.size() == b.segments.size());
  for (std::size_t s = 0; s < a.segments.size(); ++s) {
    const auto& x = a.segments[s];
    const auto& y = b.segments[s];
    INFO("segments[" << s << "]");
    CHECK(x.address == y.address);
    CHECK(x.size == y.size);
    CHECK(x.tag == y.tag);
    CHECK(x.pool == y.pool);
    CHECK(x.mapped == y.mapped);
    REQUIRE(x.chunks.size() == y.chunks.size());
    for (std::size_t c = 0; c < x.chunks.size(); ++c) {
      INFO("chunks[" << c << "]");
      CHECK(x.chunks[c].address == y.chunks[c].address);
      CHECK(x.chunks[c].size == y.chunks[c].size);
    }
    REQUIRE(x.blocks.size() == y.blocks.size());
    for (std::size_t k = 0; k < x.blocks.size(); ++k) {
      INFO("blocks[" << k << "]");
      CHECK(x.blocks[k].address == y.blocks[k].address);
      CHECK(x.blocks[k].size == y.blocks[k].size);
      CHECK(x.blocks[k].requested == y.blocks[k].requested);
      CHECK(x.blocks[k].allocated == y.blocks[k].allocated);
      CHECK(x.blocks[k].region == y.blocks[k].region);
      CHECK(x.blocks[k].state == y.blocks[k].state);
    }
  }
  REQUIRE(a.regions.size() == b.regions.size());
  for (std::size_t r = 0; r < a.regions.size(); ++r)
    check_same_region(a.regions[r], b.regions[r]);
  check_same_statistics(a.statistics, b.statistics);
}

memory_snapshot round_trip(const memory_snapshot& s, int indent) {
  const std::string text = s.to_json(indent);
  auto back = memory_snapshot::from_json(text);
  INFO((back.ok() ? std::string("ok") : back.error().to_string()));
  REQUIRE(back.ok());
  return *back;
}

device_ptr parse_address(const json& j) {
  REQUIRE(j.is_string());
  const auto text = j.get<std::string>();
  REQUIRE(text.rfind("0x", 0) == 0);
  return static_cast<device_ptr>(std::stoull(text.substr(2), nullptr, 16));
}

void check_stat_fields(const json& s) {
  for (const char* field : {"current", "peak", "allocated", "freed"}) {
    INFO(field);
    REQUIRE(s.contains(field));
    CHECK(s[field].is_number_integer());
  }
}

void check_grid_fields(const json& g) {
  REQUIRE(g.is_object());
  for (const char* field : {"allocated", "requested", "active", "reserved", "cached"}) {
    INFO(field);
    REQUIRE(g.contains(field));
    check_stat_fields(g[field]);
  }
  REQUIRE(g.contains("allocations"));
  CHECK(g["allocations"].is_number_unsigned());
  REQUIRE(g.contains("frees"));
  CHECK(g["frees"].is_number_unsigned());
  REQUIRE(g.contains("fragmentation"));
  CHECK(g["fragmentation"].is_number());
  CHECK(g["fragmentation"].get<double>() >= 0.0);
  CHECK(g["fragmentation"].get<double>() <= 1.0);
}

/// The blocks of every segment lie end to end from its first byte to its last, and so
/// do the chunks of a mapped one.
void check_tiling(const memory_snapshot& s) {
  device_ptr previous_end = 0;
  for (std::size_t i = 0; i < s.segments.size(); ++i) {
    const auto& segment = s.segments[i];
    INFO("segments[" << i << "] at 0x" << std::hex << segment.address << std::dec << " of "
                     << segment.size << " bytes, tag " << segment.tag);
    CHECK(segment.size > 0);
    CHECK(segment.address >= previous_end);  // in address order, disjoint
    CHECK(segment.address >= s.arena_base);
    CHECK(segment.address + segment.size <= s.arena_base + s.arena_size);
    previous_end = segment.address + segment.size;

    REQUIRE_FALSE(segment.blocks.empty());
    device_ptr at = segment.address;
    for (std::size_t k = 0; k < segment.blocks.size(); ++k) {
      const auto& block = segment.blocks[k];
      INFO("blocks[" << k << "]");
      CHECK(block.address == at);
      CHECK(block.size > 0);
      at = block.address + block.size;
    }
    CHECK(at == segment.address + segment.size);

    if (segment.mapped) {
      REQUIRE_FALSE(segment.chunks.empty());
      device_ptr chunk_at = segment.address;
      for (const auto& chunk : segment.chunks) {
        CHECK(chunk.address == chunk_at);
        chunk_at = chunk.address + chunk.size;
      }
      CHECK(chunk_at == segment.address + segment.size);
    }
  }
}

/// Allocated blocks are exactly the live regions, and say the same about them.
void check_blocks_match_regions(const memory_snapshot& s) {
  std::map<region_id, const snapshot_region*> regions;
  for (const auto& region : s.regions)
    regions[region.id] = &region;
  std::set<region_id> seen;
  for (const auto& segment : s.segments) {
    for (const auto& block : segment.blocks) {
      INFO("block at 0x" << std::hex << block.address << std::dec);
      if (!block.allocated) {
        CHECK(block.region == 0);
        CHECK(block.requested == 0);
        continue;
      }
      REQUIRE(regions.count(block.region) == 1);
      const snapshot_region& region = *regions.at(block.region);
      CHECK(seen.insert(block.region).second);
      CHECK(block.address == region.address);
      CHECK(block.size == region.size);
      CHECK(block.requested == region.requested);
      CHECK(block.state == region.state);
      CHECK(segment.tag == region.tag);
      CHECK((segment.pool == "dedicated") == (region.how == strategy::dedicated));
    }
  }
  CHECK(seen.size() == s.regions.size());
}

/// What a hand-built snapshot holds: extreme values of every type.
memory_snapshot hand_built() {
  memory_snapshot s;
  s.device = 3;
  s.backend = "cuda";
  s.arena_base = std::numeric_limits<device_ptr>::max() - 0xffff;  // well past 2^53
  s.arena_size = (std::size_t{1} << 60) + 1;
  s.state = engine_state::falling_asleep;
  s.tag_states = {{"weights", "awake"}, {"kv \"cache\"", "asleep"}};
  snapshot_segment segment;
  segment.address = 0x7f00'0000'0001'0000;
  segment.size = 4 * MiB;
  segment.tag = "kv \"cache\"";
  segment.pool = "large";
  segment.mapped = false;
  segment.chunks = {{segment.address, 2 * MiB}, {segment.address + 2 * MiB, 2 * MiB}};
  segment.blocks = {{segment.address, 1 * MiB, 1000, true, (std::uint64_t{1} << 60) + 7,
                     region_state::backed_up},
                    {segment.address + 1 * MiB, 3 * MiB, 0, false, 0, region_state::resident}};
  s.segments = {segment};
  snapshot_region region;
  region.id = (std::uint64_t{1} << 60) + 7;
  region.address = segment.address;
  region.size = 1 * MiB;
  region.requested = 1000;
  region.tag = segment.tag;
  region.how = strategy::first_fit;
  region.state = region_state::backed_up;
  region.contents_defined = false;
  region.last_use_ns = std::numeric_limits<std::uint64_t>::max();
  s.regions = {region};
  s.statistics.total.allocated.add(5);
  s.statistics.total.allocated.add(-7);  // current negative: must survive as signed
  s.statistics.total.reserved.current = std::numeric_limits<std::int64_t>::max();
  s.statistics.total.allocations = std::numeric_limits<std::uint64_t>::max();
  s.statistics.tags["weights"].frees = 12;
  s.statistics.tags["kv \"cache\""].cached.peak = 1;
  s.statistics.ooms = 1;
  s.statistics.oom_retries = 2;
  s.statistics.segments_created = 3;
  s.statistics.segments_released = 4;
  s.statistics.chunks_created = 5;
  s.statistics.chunks_reused = 6;
  s.statistics.chunks_released = 7;
  s.statistics.sleeps = 8;
  s.statistics.wakes = 9;
  s.statistics.failed_transitions = 10;
  s.statistics.bytes_backed_up = 11;
  s.statistics.bytes_restored = 12;
  s.statistics.bytes_discarded = 13;
  s.statistics.sleep_seconds = 0.1 + 0.2;  // not exactly representable in few digits
  s.statistics.wake_seconds = 1e-9 / 3;
  s.statistics.trims = 14;
  s.statistics.defragmentations = 15;
  s.statistics.bytes_trimmed = 16;
  return s;
}

/// from_json of `document` fails with invalid_config and a message naming `field`.
void check_rejected(const json& document, const std::string& field) {
  auto parsed = memory_snapshot::from_json(document.dump());
  INFO("expected an error naming " << field);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().code() == engine_errc::invalid_config);
  // "snapshot JSON: segments[0].size is not an integer": the path comes first, whole.
  CHECK_THAT(parsed.error().message(), Catch::StartsWith("snapshot JSON: " + field + " "));
}

} // namespace

TEST_CASE("a snapshot describes the engine's regions, segments, tags and statistics",
          "[snapshot]") {
  populated_engine p;
  const memory_snapshot s = p.e->snapshot();

  CHECK(s.device == 0);
  CHECK(s.backend == "host");
  CHECK(s.arena_size > 0);
  CHECK(s.state == engine_state::awake);
  // Every tag the engine knows, awake (it may know more, such as "default").
  const auto tags = p.e->tags();
  CHECK(s.tag_states.size() == tags.size());
  for (const auto& tag : tags) {
    INFO("tag " << tag);
    REQUIRE(s.tag_states.count(tag) == 1);
    CHECK(s.tag_states.at(tag) == "awake");
  }
  for (const char* tag : {"weights", "kv_cache", "activations"})
    CHECK(s.tag_states.count(tag) == 1);

  // Regions: the live ones, in id order, as regions() gives them.
  REQUIRE(s.regions.size() == p.live.size());
  for (std::size_t i = 0; i < s.regions.size(); ++i)
    check_same_region(s.regions[i], p.live[i], *p.e);

  check_tiling(s);
  check_blocks_match_regions(s);

  // Free blocks exist: freeing inside shared segments left holes or tails.
  std::size_t free_blocks = 0;
  for (const auto& segment : s.segments)
    for (const auto& block : segment.blocks)
      free_blocks += block.allocated ? 0 : 1;
  CHECK(free_blocks > 0);

  // Statistics are the engine's.
  check_same_statistics(s.statistics, p.e->statistics());
  CHECK(s.statistics.total.allocations == 11);
  CHECK(s.statistics.total.frees == 3);
}

TEST_CASE("a snapshot survives to_json and from_json unchanged", "[snapshot]") {
  populated_engine p;

  SECTION("awake") {
    const memory_snapshot s = p.e->snapshot();
    check_same_snapshot(s, round_trip(s, 2));
    check_same_snapshot(s, round_trip(s, -1));
    // Writing what was read gives the same text.
    CHECK(round_trip(s, 2).to_json(2) == s.to_json(2));
  }

  SECTION("with a tag asleep") {
    p.sleep_kv_cache();
    const memory_snapshot s = p.e->snapshot();
    CHECK(s.state == engine_state::asleep);
    CHECK(s.tag_states.at("kv_cache") == "asleep");
    CHECK(s.tag_states.at("weights") == "awake");
    bool saw_kv_segment = false;
    for (const auto& segment : s.segments) {
      if (segment.tag != "kv_cache")
        continue;
      saw_kv_segment = true;
      CHECK_FALSE(segment.mapped);
    }
    CHECK(saw_kv_segment);
    for (const auto& region : s.regions)
      CHECK(region.state ==
            (region.tag == "kv_cache" ? region_state::discarded : region_state::resident));
    check_tiling(s);
    check_blocks_match_regions(s);
    check_same_snapshot(s, round_trip(s, 2));
  }
}

TEST_CASE("a snapshot with values JSON numbers could not hold survives the round trip",
          "[snapshot]") {
  const memory_snapshot s = hand_built();
  check_same_snapshot(s, round_trip(s, 4));
  check_same_snapshot(s, round_trip(s, -1));
  // Addresses past 2^53 are strings, exact to the last digit.
  const json j = json::parse(s.to_json());
  CHECK(j["arena"]["base"] == "0xffffffffffff0000");
  CHECK(j["segments"][0]["address"] == "0x7f00000000010000");
  CHECK(j["regions"][0]["last_use_ns"] == std::numeric_limits<std::uint64_t>::max());
  CHECK(j["statistics"]["total"]["allocated"]["current"] == -2);
}

TEST_CASE("snapshot JSON has the documented fields and types", "[snapshot]") {
  populated_engine p;
  p.sleep_kv_cache();
  const memory_snapshot s = p.e->snapshot();

  SECTION("one line without indent") {
    const std::string line = s.to_json(-1);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(json::parse(line) == json::parse(s.to_json(2)));
  }

  const json j = json::parse(s.to_json());
  REQUIRE(j.is_object());
  CHECK(j["format"] == "gpumem.snapshot");
  CHECK(j["version"] == 1);
  CHECK(j["device"] == 0);
  CHECK(j["backend"] == "host");
  REQUIRE(j["arena"].is_object());
  CHECK(parse_address(j["arena"]["base"]) == s.arena_base);
  CHECK(j["arena"]["size"].is_number_unsigned());
  CHECK(j["arena"]["size"].get<std::size_t>() == s.arena_size);
  CHECK(j["state"] == "asleep");
  REQUIRE(j["tags"].is_object());
  CHECK(j["tags"].size() == s.tag_states.size());
  for (const auto& [tag, state] : j["tags"].items()) {
    INFO("tags." << tag);
    CHECK(state == (tag == "kv_cache" ? "asleep" : "awake"));
  }

  const std::set<std::string> region_states{"resident", "backed_up", "discarded"};
  REQUIRE(j["segments"].is_array());
  REQUIRE(j["segments"].size() == s.segments.size());
  for (std::size_t i = 0; i < s.segments.size(); ++i) {
    const json& segment = j["segments"][i];
    INFO("segments[" << i << "]");
    CHECK(parse_address(segment["address"]) == s.segments[i].address);
    CHECK(segment["size"].is_number_unsigned());
    CHECK(segment["tag"].is_string());
    CHECK((segment["pool"] == "small" || segment["pool"] == "large" ||
           segment["pool"] == "dedicated"));
    CHECK(segment["mapped"].is_boolean());
    REQUIRE(segment["chunks"].is_array());
    for (const json& chunk : segment["chunks"]) {
      (void)parse_address(chunk["address"]);
      CHECK(chunk["size"].is_number_unsigned());
    }
    REQUIRE(segment["blocks"].is_array());
    REQUIRE_FALSE(segment["blocks"].empty());
    for (const json& block : segment["blocks"]) {
      (void)parse_address(block["address"]);
      CHECK(block["size"].is_number_unsigned());
      CHECK(block["requested"].is_number_unsigned());
      CHECK(block["allocated"].is_boolean());
      CHECK(block["region"].is_number_unsigned());
      CHECK(region_states.count(block["state"].get<std::string>()) == 1);
    }
  }

  REQUIRE(j["regions"].is_array());
  REQUIRE(j["regions"].size() == s.regions.size());
  std::set<std::string> strategies_seen;
  for (std::size_t i = 0; i < s.regions.size(); ++i) {
    const json& region = j["regions"][i];
    INFO("regions[" << i << "]");
    CHECK(region["id"] == s.regions[i].id);
    CHECK(parse_address(region["address"]) == s.regions[i].address);
    CHECK(region["size"] == s.regions[i].size);
    CHECK(region["requested"] == s.regions[i].requested);
    CHECK(region["tag"] == s.regions[i].tag);
    strategies_seen.insert(region["strategy"].get<std::string>());
    CHECK(region_states.count(region["state"].get<std::string>()) == 1);
    CHECK(region["contents_defined"].is_boolean());
    CHECK(region["last_use_ns"].is_number_unsigned());
  }
  // The documented names, which are to_string()'s.
  CHECK(strategies_seen == std::set<std::string>{"pooled", "first_fit", "dedicated"});

  const json& stats = j["statistics"];
  REQUIRE(stats.is_object());
  {
    INFO("statistics.total");
    check_grid_fields(stats["total"]);
  }
  REQUIRE(stats["tags"].is_object());
  CHECK(stats["tags"].size() == s.statistics.tags.size());
  for (const auto& [tag, grid] : stats["tags"].items()) {
    INFO("statistics.tags." << tag);
    check_grid_fields(grid);
  }
  for (const char* counter :
       {"ooms", "oom_retries", "segments_created", "segments_released", "chunks_created",
        "chunks_reused", "chunks_released", "sleeps", "wakes", "failed_transitions",
        "bytes_backed_up", "bytes_restored", "bytes_discarded", "trims", "defragmentations",
        "bytes_trimmed"}) {
    INFO("statistics." << counter);
    REQUIRE(stats.contains(counter));
    CHECK(stats[counter].is_number_unsigned());
  }
  CHECK(stats["sleeps"] == 1);
  CHECK(stats["sleep_seconds"].is_number());
  CHECK(stats["wake_seconds"].is_number());
  CHECK(stats["total"]["allocations"] == s.statistics.total.allocations);
  CHECK(stats["total"]["fragmentation"].get<double>() ==
        Approx(s.statistics.total.fragmentation()));
}

TEST_CASE("snapshot JSON names every state by to_string's names", "[snapshot]") {
  memory_snapshot s = hand_built();
  for (auto state : {engine_state::awake, engine_state::falling_asleep, engine_state::asleep,
                     engine_state::waking}) {
    s.state = state;
    const json j = json::parse(s.to_json());
    CHECK(j["state"] == to_string(state));
    auto back = memory_snapshot::from_json(j.dump());
    REQUIRE(back.ok());
    CHECK(back->state == state);
  }
  CHECK(std::string(to_string(engine_state::falling_asleep)) == "falling_asleep");
  CHECK(std::string(to_string(region_state::backed_up)) == "backed_up");
  CHECK(std::string(to_string(strategy::first_fit)) == "first_fit");
}

TEST_CASE("from_json rejects malformed documents with invalid_config naming the field",
          "[snapshot]") {
  const json good = json::parse(hand_built().to_json());
  REQUIRE(memory_snapshot::from_json(good.dump()).ok());

  SECTION("not JSON") {
    for (const char* text : {"", "{", "{\"format\": }", "nonsense", "{} trailing"}) {
      auto parsed = memory_snapshot::from_json(text);
      INFO("text: " << text);
      REQUIRE_FALSE(parsed.ok());
      CHECK(parsed.error().code() == engine_errc::invalid_config);
      CHECK_THAT(parsed.error().message(), Catch::Contains("not JSON"));
    }
  }

  SECTION("not an object") {
    check_rejected(json::array({1, 2}), "the document");
    check_rejected(json(42), "the document");
  }

  SECTION("missing fields") {
    for (const char* field : {"format", "version", "device", "backend", "arena", "state",
                              "tags", "segments", "regions", "statistics"}) {
      json doc = good;
      doc.erase(field);
      check_rejected(doc, field);
    }
    json doc = good;
    doc["arena"].erase("base");
    check_rejected(doc, "arena.base");
    doc = good;
    doc["segments"][0].erase("pool");
    check_rejected(doc, "segments[0].pool");
    doc = good;
    doc["segments"][0]["blocks"][1].erase("region");
    check_rejected(doc, "segments[0].blocks[1].region");
    doc = good;
    doc["segments"][0]["chunks"][1].erase("size");
    check_rejected(doc, "segments[0].chunks[1].size");
    doc = good;
    doc["regions"][0].erase("last_use_ns");
    check_rejected(doc, "regions[0].last_use_ns");
    doc = good;
    doc["statistics"]["total"]["active"].erase("peak");
    check_rejected(doc, "statistics.total.active.peak");
    doc = good;
    doc["statistics"]["tags"]["weights"].erase("frees");
    check_rejected(doc, "statistics.tags.weights.frees");
    doc = good;
    doc["statistics"].erase("bytes_trimmed");
    check_rejected(doc, "statistics.bytes_trimmed");
    doc = good;
    doc["statistics"].erase("wake_seconds");
    check_rejected(doc, "statistics.wake_seconds");
  }

  SECTION("ill-typed fields") {
    json doc = good;
    doc["format"] = "pytorch.snapshot";
    check_rejected(doc, "format");
    doc = good;
    doc["version"] = 2;
    check_rejected(doc, "version");
    doc = good;
    doc["device"] = "0";
    check_rejected(doc, "device");
    doc = good;
    doc["device"] = 1.5;
    check_rejected(doc, "device");
    doc = good;
    doc["arena"]["base"] = 140737488355328ull;  // a number, not "0x..."
    check_rejected(doc, "arena.base");
    doc = good;
    doc["arena"]["base"] = "0x12g4";
    check_rejected(doc, "arena.base");
    doc = good;
    doc["arena"]["base"] = "1234";
    check_rejected(doc, "arena.base");
    doc = good;
    doc["arena"]["base"] = "0x1ffffffffffffffff";  // 65 bits
    check_rejected(doc, "arena.base");
    doc = good;
    doc["arena"]["size"] = -1;
    check_rejected(doc, "arena.size");
    doc = good;
    doc["state"] = "dozing";
    check_rejected(doc, "state");
    doc = good;
    doc["tags"]["weights"] = "sleepy";
    check_rejected(doc, "tags.weights");
    doc = good;
    doc["tags"] = json::array();
    check_rejected(doc, "tags");
    doc = good;
    doc["segments"] = json::object();
    check_rejected(doc, "segments");
    doc = good;
    doc["segments"][0]["size"] = "4 MiB";
    check_rejected(doc, "segments[0].size");
    doc = good;
    doc["segments"][0]["pool"] = "huge";
    check_rejected(doc, "segments[0].pool");
    doc = good;
    doc["segments"][0]["mapped"] = 1;
    check_rejected(doc, "segments[0].mapped");
    doc = good;
    doc["segments"][0]["blocks"][0]["allocated"] = "yes";
    check_rejected(doc, "segments[0].blocks[0].allocated");
    doc = good;
    doc["segments"][0]["blocks"][0]["state"] = "resting";
    check_rejected(doc, "segments[0].blocks[0].state");
    doc = good;
    doc["segments"][0]["blocks"][0] = 5;
    check_rejected(doc, "segments[0].blocks[0]");
    doc = good;
    doc["regions"][0]["strategy"] = "best_fit";
    check_rejected(doc, "regions[0].strategy");
    doc = good;
    doc["regions"][0]["id"] = -3;
    check_rejected(doc, "regions[0].id");
    doc = good;
    doc["regions"][0]["contents_defined"] = json();
    check_rejected(doc, "regions[0].contents_defined");
    doc = good;
    doc["statistics"]["total"]["reserved"]["current"] = 1e3;
    check_rejected(doc, "statistics.total.reserved.current");
    doc = good;
    doc["statistics"]["total"]["reserved"]["current"] = 18446744073709551615ull;
    check_rejected(doc, "statistics.total.reserved.current");
    doc = good;
    doc["statistics"]["sleep_seconds"] = "0.3";
    check_rejected(doc, "statistics.sleep_seconds");
    doc = good;
    doc["statistics"]["total"]["fragmentation"] = "high";
    check_rejected(doc, "statistics.total.fragmentation");
  }

  SECTION("unknown fields are ignored") {
    json doc = good;
    doc["written_by"] = "a newer gpumem";
    doc["segments"][0]["stream"] = 7;
    auto parsed = memory_snapshot::from_json(doc.dump());
    REQUIRE(parsed.ok());
    check_same_snapshot(*parsed, hand_built());
  }
}
