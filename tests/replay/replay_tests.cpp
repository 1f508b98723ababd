// The trace tooling: the generator keeps its promises, the simulated baselines give
// the peaks their rules imply (computed by hand below), and a generated trace
// replays on gpumem's engine without running out of memory.

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "gpumem/cuda/byte_units.hpp"
#include "replay/baseline_policies.hpp"
#include "replay/replayer.hpp"
#include "replay/trace_generator.hpp"

using namespace gpumem;
using namespace gpumem::replay;
using core::log_action;
using core::log_entry;

namespace {

/// Small enough to replay in a moment: 256 MiB of weights on a 1 GiB device.
trace_options small_options(std::uint64_t seed = 1) {
  trace_options options;
  options.seed = seed;
  options.requests = 20;
  options.model_bytes = 256 * MiB;
  options.capacity = 1 * GiB;
  return options;
}

generated_trace generate(const trace_options& options) {
  auto trace = generate_trace(options);
  REQUIRE(trace.ok());
  return std::move(trace).value();
}

std::string csv(const std::vector<log_entry>& entries) {
  std::ostringstream out;
  write_trace(out, entries);
  return out.str();
}

log_entry allocate(std::uint64_t pointer, std::size_t size) {
  log_entry e;
  e.action = log_action::allocate;
  e.pointer = pointer;
  e.size = size;
  e.tag = "default";
  return e;
}

log_entry release(std::uint64_t pointer) {
  log_entry e;
  e.action = log_action::free;
  e.pointer = pointer;
  e.tag = "default";
  return e;
}

policy_result replay_ok(const std::vector<log_entry>& trace, replay_target& target) {
  auto result = replay_trace(trace, target, "test");
  REQUIRE(result.ok());
  return std::move(result).value();
}

} // namespace

// --- the generator ------------------------------------------------------------------

TEST_CASE("trace-gen is reproducible: same seed, same bytes", "[trace_gen]") {
  auto first = csv(generate(small_options(7)).entries);
  auto again = csv(generate(small_options(7)).entries);
  auto other = csv(generate(small_options(8)).entries);
  CHECK(first == again);
  CHECK(first != other);
  CHECK(first.rfind("Thread,Time,Action,Pointer,Size,Stream,Tag\n", 0) == 0);
}

TEST_CASE("a generated trace reads back through the allocation log reader", "[trace_gen]") {
  auto trace = generate(small_options());
  std::istringstream in(csv(trace.entries));
  auto read = core::read_allocation_log(in);
  REQUIRE(read.ok());
  REQUIRE(read->size() == trace.entries.size());
  for (std::size_t i = 0; i < trace.entries.size(); ++i) {
    const auto& a = trace.entries[i];
    const auto& b = (*read)[i];
    INFO("entry " << i);
    REQUIRE(a.action == b.action);
    REQUIRE(a.pointer == b.pointer);
    REQUIRE(a.size == b.size);
    REQUIRE(a.tag == b.tag);
    REQUIRE(a.time == Approx(b.time).margin(1e-6));
  }
}

TEST_CASE("a generated trace loads the weights first and frees everything else",
          "[trace_gen]") {
  auto options = small_options(GENERATE(1, 2, 3));
  auto trace = generate(options);
  const auto& entries = trace.entries;
  REQUIRE_FALSE(entries.empty());

  // Weights: a prefix of allocations of 16 to 256 MiB, adding up to the model.
  std::size_t weights = 0, weight_bytes = 0;
  while (weights < entries.size() && entries[weights].tag == "weights") {
    CHECK(entries[weights].action == log_action::allocate);
    CHECK(entries[weights].size >= 16 * MiB);
    CHECK(entries[weights].size <= 256 * MiB);
    weight_bytes += entries[weights].size;
    ++weights;
  }
  CHECK(weights >= 1);
  CHECK(weight_bytes == options.model_bytes);
  CHECK(trace.weight_bytes == options.model_bytes);

  // Everything after: each allocation freed once, later, with its size and tag;
  // pointers never reused; live bytes under 90% of the capacity.
  std::map<cuda::device_ptr, log_entry> live;
  std::set<cuda::device_ptr> seen;
  std::set<std::string> tags;
  std::size_t live_bytes = weight_bytes, peak = weight_bytes;
  double time = 0;
  for (std::size_t i = weights; i < entries.size(); ++i) {
    const auto& e = entries[i];
    INFO("entry " << i);
    REQUIRE(e.tag != "weights");
    REQUIRE(e.time >= time);
    time = e.time;
    tags.insert(e.tag);
    if (e.action == log_action::allocate) {
      REQUIRE(e.size > 0);
      REQUIRE(seen.insert(e.pointer).second);
      if (e.tag == "kv_cache")
        REQUIRE(e.size == options.kv_block);
      live.emplace(e.pointer, e);
      live_bytes += e.size;
      peak = std::max(peak, live_bytes);
    } else {
      REQUIRE(e.action == log_action::free);
      auto it = live.find(e.pointer);
      REQUIRE(it != live.end());
      REQUIRE(it->second.size == e.size);
      REQUIRE(it->second.tag == e.tag);
      live_bytes -= e.size;
      live.erase(it);
    }
  }
  CHECK(live.empty());
  CHECK(tags == std::set<std::string>{"activations", "kv_cache"});
  CHECK(peak == trace.peak_live_bytes);
  CHECK(peak <= options.capacity / 10 * 9);
  CHECK(trace.steps > 0);
}

TEST_CASE("bursty serving swings the arrivals: reproducible, and unlike steady serving",
          "[trace_gen]") {
  auto options = small_options(5);
  options.requests = 200;
  auto steady = generate(options);
  options.arrival_swing = bursty_swing;
  options.swing_period = 5;
  auto bursty = generate(options);
  CHECK(csv(bursty.entries) == csv(generate(options).entries));
  CHECK(csv(bursty.entries) != csv(steady.entries));

  // Arrivals come fast in the first half of each swing and slowly in the second: the
  // prompts' KV blocks, allocated as requests are admitted, bunch up in the first.
  std::size_t first_half = 0, second_half = 0;
  for (const auto& e : bursty.entries) {
    if (e.tag != "kv_cache" || e.action != log_action::allocate)
      continue;
    auto phase = std::fmod(e.time, options.swing_period) / options.swing_period;
    (phase < 0.5 ? first_half : second_half)++;
  }
  CHECK(first_half > second_half);
}

TEST_CASE("trace-gen refuses options that cannot make a trace", "[trace_gen]") {
  auto options = small_options();
  SECTION("no requests") { options.requests = 0; }
  SECTION("no concurrency") { options.max_concurrent = 0; }
  SECTION("a block smaller than a token") { options.kv_block = 32 * KiB; }
  SECTION("a model larger than the device") { options.model_bytes = 1 * GiB; }
  SECTION("a swing of the whole rate") { options.arrival_swing = 1; }
  SECTION("a negative swing") { options.arrival_swing = -0.5; }
  SECTION("a swing without a period") {
    options.arrival_swing = 0.5;
    options.swing_period = 0;
  }
  auto trace = generate_trace(options);
  REQUIRE_FALSE(trace.ok());
  CHECK(trace.error().code() == core::engine_errc::invalid_config);
}

// --- the baselines --------------------------------------------------------------------

TEST_CASE("vLLM-style rounds every allocation to its own 2 MiB granules", "[baseline]") {
  vllm_style_policy vllm(1 * GiB);
  auto result = replay_ok({allocate(0x1000, 1 * MiB), allocate(0x2000, 1 * MiB),
                           allocate(0x3000, 1 * MiB), release(0x2000), release(0x1000),
                           release(0x3000)},
                          vllm);
  CHECK(result.peak_live_bytes == 3 * MiB);
  CHECK(result.peak_physical_bytes == 6 * MiB);
  CHECK(result.fragmentation == Approx(0.5));
  CHECK(result.ooms == 0);
  CHECK(result.operations == 6);
  CHECK(vllm.physical_bytes() == 0);  // released on free
}

TEST_CASE("vLLM-style runs out of memory at the capacity, and recovers", "[baseline]") {
  vllm_style_policy vllm(4 * MiB);
  auto result = replay_ok({allocate(0x1000, 3 * MiB),   // 4 MiB
                           allocate(0x2000, 1),         // 2 MiB more: OOM
                           release(0x2000),             // dropped: it never lived
                           release(0x1000), allocate(0x3000, 1)},
                          vllm);
  CHECK(result.ooms == 1);
  CHECK(result.skipped == 0);
  CHECK(result.peak_physical_bytes == 4 * MiB);
  CHECK(result.peak_live_bytes == 3 * MiB);
  CHECK(vllm.physical_bytes() == 2 * MiB);
}

TEST_CASE("PyTorch caching: small requests share 2 MiB segments", "[baseline]") {
  // 1 MiB -> new 2 MiB segment, split (1 MiB stays free); the second takes that free
  // 1 MiB whole; the third needs a second segment.
  pytorch_caching_policy pytorch(1 * GiB);
  auto result = replay_ok({allocate(0x1000, 1 * MiB), allocate(0x2000, 1 * MiB),
                           allocate(0x3000, 1 * MiB)},
                          pytorch);
  CHECK(result.peak_live_bytes == 3 * MiB);
  CHECK(result.peak_physical_bytes == 4 * MiB);
  CHECK(result.fragmentation == Approx(0.25));
}

TEST_CASE("PyTorch caching: mid-sized requests share 20 MiB segments", "[baseline]") {
  // 3 x 5 MiB split one 20 MiB segment (remainders 15, 10, 5 MiB, all > 1 MiB). Freed,
  // they coalesce to 20 MiB again, which a 12 MiB request then splits.
  pytorch_caching_policy pytorch(1 * GiB);
  auto result =
    replay_ok({allocate(0x1000, 5 * MiB), allocate(0x2000, 5 * MiB), allocate(0x3000, 5 * MiB),
               release(0x2000), release(0x1000), release(0x3000), allocate(0x4000, 12 * MiB),
               allocate(0x5000, 8 * MiB)},
              pytorch);
  CHECK(result.peak_live_bytes == 20 * MiB);
  CHECK(result.peak_physical_bytes == 20 * MiB);
  CHECK(result.ooms == 0);
}

TEST_CASE("PyTorch caching: large remainders of 1 MiB or less are not split off",
          "[baseline]") {
  // 19 MiB -> its own 20 MiB segment, unsplit (1 MiB left is not > 1 MiB).
  // 512 KiB -> a 2 MiB small segment.                                   reserved 22 MiB
  // free 19 MiB; 18 MiB takes that 20 MiB block, splitting off 2 MiB (> 1 MiB).
  // 1.5 MiB (large pool) takes the 2 MiB block whole (512 KiB left: no split).
  pytorch_caching_policy pytorch(1 * GiB);
  auto result = replay_ok({allocate(0x1000, 19 * MiB), allocate(0x2000, 512 * KiB),
                           release(0x1000), allocate(0x3000, 18 * MiB),
                           allocate(0x4000, 1 * MiB + 512 * KiB)},
                          pytorch);
  CHECK(result.peak_live_bytes == 20 * MiB);
  CHECK(result.peak_physical_bytes == 22 * MiB);
}

TEST_CASE("PyTorch caching: from 10 MiB, a segment is the size rounded to 2 MiB",
          "[baseline]") {
  pytorch_caching_policy at_limit(1 * GiB), below(1 * GiB);
  CHECK(replay_ok({allocate(0x1000, 10 * MiB)}, at_limit).peak_physical_bytes == 10 * MiB);
  CHECK(replay_ok({allocate(0x1000, 10 * MiB - 512)}, below).peak_physical_bytes == 20 * MiB);
}

TEST_CASE("PyTorch caching: sizes round to 512 B and free neighbours coalesce",
          "[baseline]") {
  // Eight requests of 256 KiB less 100 B round to 256 KiB and fill one 2 MiB segment.
  // Freeing the first two leaves one 512 KiB block, so 512 KiB needs no new segment.
  pytorch_caching_policy pytorch(1 * GiB);
  std::vector<log_entry> trace;
  for (std::uint64_t i = 1; i <= 8; ++i)
    trace.push_back(allocate(i * 0x1000, 256 * KiB - 100));
  trace.push_back(release(0x1000));
  trace.push_back(release(0x2000));
  trace.push_back(allocate(0x9000, 512 * KiB));
  auto result = replay_ok(trace, pytorch);
  CHECK(result.peak_physical_bytes == 2 * MiB);
  CHECK(result.peak_live_bytes == 6 * (256 * KiB - 100) + 512 * KiB);
}

TEST_CASE("PyTorch caching: at capacity, cached segments are released before an OOM",
          "[baseline]") {
  // 20 MiB, freed: cached. 22 MiB would exceed 24 MiB, so the cached segment goes
  // first. 4 MiB needs a 20 MiB segment: OOM. After 22 MiB is freed (cached, not
  // released), a 2 MiB small segment still fits: 24 MiB reserved.
  pytorch_caching_policy pytorch(24 * MiB);
  auto result = replay_ok({allocate(0x1000, 20 * MiB), release(0x1000),
                           allocate(0x2000, 22 * MiB), allocate(0x3000, 4 * MiB),
                           release(0x3000), release(0x2000), allocate(0x4000, 1 * MiB)},
                          pytorch);
  CHECK(result.ooms == 1);
  CHECK(result.peak_live_bytes == 22 * MiB);
  CHECK(result.peak_physical_bytes == 24 * MiB);
  pytorch.release_cached_segments();  // empty_cache(): the 1 MiB block's segment stays
  CHECK(pytorch.physical_bytes() == 2 * MiB);
}

TEST_CASE("the baselines count the memory they create, reuse and release", "[baseline]") {
  std::vector<log_entry> trace{allocate(0x1000, 1 * MiB), release(0x1000),
                               allocate(0x2000, 1 * MiB), allocate(0x3000, 1 * MiB)};
  SECTION("vLLM-style: every allocation its own, given back on free") {
    vllm_style_policy vllm(1 * GiB);
    auto result = replay_ok(trace, vllm);
    CHECK(result.churn.created == 3);
    CHECK(result.churn.reused == 0);
    CHECK(result.churn.released == 1);
    CHECK(result.churn.bytes_created == 6 * MiB);
    CHECK(result.peak_physical_bytes == 4 * MiB);
    CHECK(result.created_per_peak == Approx(1.5));
    CHECK_FALSE(result.backend);
  }
  SECTION("PyTorch caching: one 2 MiB segment serves all three") {
    pytorch_caching_policy pytorch(1 * GiB);
    auto result = replay_ok(trace, pytorch);
    CHECK(result.churn.created == 1);
    CHECK(result.churn.reused == 2);
    CHECK(result.churn.released == 0);
    CHECK(result.churn.bytes_created == 2 * MiB);
    CHECK(result.created_per_peak == Approx(1.0));
  }
}

TEST_CASE("replay skips what it cannot replay and says so", "[replay]") {
  vllm_style_policy vllm(1 * GiB);
  auto failure = allocate(0x3000, 1 * MiB);
  failure.action = log_action::allocate_failure;
  auto result = replay_ok({allocate(0x1000, 0),       // zero bytes
                           allocate(0x2000, 1 * MiB),
                           allocate(0x2000, 1 * MiB),  // already live
                           failure,
                           release(0x4000)},           // never allocated
                          vllm);
  CHECK(result.skipped == 4);
  CHECK(result.operations == 1);
  CHECK(result.peak_live_bytes == 1 * MiB);
}

// --- gpumem's engine ------------------------------------------------------------------

TEST_CASE("a generated trace replays on gpumem's engine without running out of memory",
          "[replay][engine]") {
  auto trace = generate(small_options());
  replay_options options;
  options.capacity = 1 * GiB;
  auto report = replay_all(trace.entries, options);
  REQUIRE(report.ok());
  REQUIRE(report->policies.size() == 3);
  CHECK(report->entries == trace.entries.size());

  const auto& gpumem = report->policies[0];
  CHECK(gpumem.policy == "gpumem");
  CHECK(gpumem.ooms == 0);
  CHECK(gpumem.skipped == 0);
  CHECK(gpumem.operations == trace.entries.size());
  CHECK(gpumem.peak_live_bytes == trace.peak_live_bytes);
  CHECK(gpumem.peak_physical_bytes >= gpumem.peak_live_bytes);
  CHECK(gpumem.ns_per_operation > 0);
  CHECK(report->policies[1].policy == "vllm-style");
  CHECK(report->policies[2].policy == "pytorch-caching");
  for (const auto& p : report->policies) {
    INFO(p.policy);
    CHECK(p.peak_physical_bytes >= p.peak_live_bytes);
    CHECK(p.peak_physical_bytes <= options.capacity);
  }

  // gpumem's backend was timed; the figures are the chunks it made and gave back.
  REQUIRE(gpumem.backend);
  CHECK(gpumem.backend->create_ms > 0);
  CHECK(gpumem.backend->map_ms > 0);
  CHECK(gpumem.backend->engine_ns_per_operation > 0);
  CHECK(gpumem.churn.created > 0);
  CHECK(gpumem.churn.bytes_created >= gpumem.peak_physical_bytes);
  CHECK(gpumem.created_per_peak >= 1);
  CHECK_FALSE(report->policies[1].backend);

  auto table = format_table(*report);
  CHECK_THAT(table, Catch::Contains("gpumem ") && Catch::Contains("vllm-style ")
                      && Catch::Contains("pytorch-caching ") && Catch::Contains("peak physical")
                      && Catch::Contains("create ms"));
  auto json = to_json(*report);
  CHECK_THAT(json, Catch::Contains("\"policy\": \"gpumem\"")
                     && Catch::Contains("\"peak_physical_bytes\": "
                                        + std::to_string(gpumem.peak_physical_bytes))
                     && Catch::Contains("\"created_bytes\": "
                                        + std::to_string(gpumem.churn.bytes_created))
                     && Catch::Contains("\"release_ms\": "));
}

TEST_CASE("gpumem keeps a bursty server's memory: nothing created twice, no more held",
          "[replay][engine]") {
  // Live bytes rise and fall with the arrivals; gpumem's cache (cache_decay far
  // longer than a swing) serves each rise from the last one's memory.
  auto options = small_options(3);
  options.requests = 300;
  options.arrival_swing = bursty_swing;
  options.swing_period = 5;
  auto trace = generate(options);
  replay_options replaying;
  replaying.capacity = 1 * GiB;
  auto report = replay_all(trace.entries, replaying);
  REQUIRE(report.ok());
  const auto& gpumem = report->policies[0];
  CHECK(gpumem.ooms == 0);
  CHECK(gpumem.churn.released == 0);
  CHECK(gpumem.churn.bytes_created == gpumem.peak_physical_bytes);
  CHECK(gpumem.fragmentation < 0.02);

  SECTION("a cache that decays at once makes the memory again at every rise") {
    replaying.engine.cache_decay = std::chrono::milliseconds{0};
    auto churning = replay_all(trace.entries, replaying);
    REQUIRE(churning.ok());
    CHECK(churning->policies[0].created_per_peak > 2);
  }
}
