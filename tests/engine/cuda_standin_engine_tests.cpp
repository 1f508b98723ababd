// The engine on the CUDA backend over the driver stand-in: sleep and wake keep every
// backed-up byte, and memory handed out is never copied or unmapped under a kernel
// the client queued (docs/gpu-contract.md); a sticky error loses the device.

#include "engine/engine_test_support.hpp"
#include "support/cuda_standin.hpp"

using namespace gpumem;
using namespace gpumem::engine_test;
using test::standin;
using test::standin_backend;

namespace {

void check_invariants(const engine& e) {
  auto stats = statistics_violations(e);
  INFO(join(stats));
  CHECK(stats.empty());
  auto snap = snapshot_violations(e);
  INFO(join(snap));
  CHECK(snap.empty());
}

bool all_bytes(const region_info& r, std::byte value) {
  const auto* p = bytes_of(r.address);
  for (std::size_t i = 0; i < r.requested; ++i)
    if (p[i] != value)
      return false;
  return true;
}

} // namespace

TEST_CASE("cuda on the stand-in: level 1 sleep and wake keep weights' bytes at their addresses",
          "[cuda_standin][engine][sleep]") {
  standin_backend sb;
  auto eng = make_engine(*sb);
  auto regions = populate(*eng);
  check_invariants(*eng);
  for (int cycle = 0; cycle < 3; ++cycle) {
    INFO("cycle " << cycle);
    auto slept = must_sleep(*eng, sleep_policy::level(1));
    CHECK(slept.bytes_backed_up == sum_requested(with_tag(*eng, regions, weights)));
    CHECK(eng->physical_bytes() == 0);
    CHECK(all_tags_asleep(*eng));
    check_invariants(*eng);
    must_wake(*eng);
    for (const auto& r : with_tag(*eng, regions, weights))
      CHECK_REGION_PATTERN(r, r.id);
    check_invariants(*eng);
    for (const auto& r : without_tag(*eng, regions, weights))
      fill_region(r, r.id);  // discarded: written again, as a client would
  }
  CHECK_FALSE(eng->device_lost().has_value());
  CHECK_FALSE(sb->lost(0).has_value());
}

TEST_CASE("cuda on the stand-in: two-phase sleep and wake, aborted then committed",
          "[cuda_standin][engine][transition]") {
  standin_backend sb;
  auto eng = make_engine(*sb);
  auto regions = populate(*eng);
  auto before = observable::of(*eng);

  REQUIRE(eng->begin_sleep(sleep_policy::level(1), core::commit_mode::on_commit).ok());
  auto prepared = finish_transition(*eng);
  INFO(outcome(prepared));
  REQUIRE(prepared.ok());
  REQUIRE(eng->prepared());
  REQUIRE(eng->abort().ok());
  CHECK_UNCHANGED(before, *eng);
  for (const auto& r : regions)
    CHECK_REGION_PATTERN(r, r.id);

  REQUIRE(eng->begin_sleep(sleep_policy::level(1), core::commit_mode::on_commit).ok());
  REQUIRE(finish_transition(*eng).ok());
  REQUIRE(eng->commit().ok());
  CHECK(all_tags_asleep(*eng));
  REQUIRE(eng->begin_wake({}, core::commit_mode::on_commit).ok());
  REQUIRE(finish_transition(*eng).ok());
  REQUIRE(eng->commit().ok());
  for (const auto& r : with_tag(*eng, regions, weights))
    CHECK_REGION_PATTERN(r, r.id);
  check_invariants(*eng);
}

TEST_CASE("cuda on the stand-in: sleep waits for the client's kernels before backup and unmap",
          "[cuda_standin][engine][sync]") {
  standin_backend sb;
  test::client_context client(0);  // PyTorch's context on this thread
  auto eng = make_engine(*sb);
  auto w = must_allocate(*eng, 6 * MiB, weights, strategy::dedicated);
  auto p = must_allocate(*eng, 3 * MiB + 5, weights, strategy::pooled);
  fill_region(w, 1);
  fill_region(p, 2);
  // Kernels still writing both when the sleep is asked for.
  client.launch(w.address, w.size, 0x5A);
  client.launch(p.address, p.requested, 0xA5);

  auto slept = eng->sleep(sleep_policy::level(1));
  INFO(outcome(slept));
  REQUIRE(slept.ok());
  CHECK_FALSE(sb->lost(0).has_value());
  must_wake(*eng);
  // The kernels' bytes came back, not those from before them.
  CHECK(all_bytes(w, std::byte{0x5A}));
  CHECK(all_bytes(p, std::byte{0xA5}));
  CHECK(test::current_context() == client.context);
}

TEST_CASE("cuda on the stand-in: frees, trims and defragmentation wait for the client's kernels",
          "[cuda_standin][engine][sync]") {
  standin_backend sb;
  test::client_context client(0);
  auto eng = make_engine(*sb);

  SECTION("a freed dedicated region, then trim") {
    auto r = must_allocate(*eng, 8 * MiB, kv_cache, strategy::dedicated);
    client.launch(r.address, r.size, 0x11);
    must_free(*eng, r.id);
    eng->trim();
  }
  SECTION("a cached segment's chunks taken for a new one") {
    auto r = must_allocate(*eng, 8 * MiB, kv_cache, strategy::dedicated);
    client.launch(r.address, r.size, 0x22);
    must_free(*eng, r.id);
    auto other = must_allocate(*eng, 8 * MiB, weights, strategy::dedicated);
    must_free(*eng, other.id);
  }
  SECTION("a free tail given back by defragment") {
    auto big = must_allocate(*eng, 40 * MiB, kv_cache, strategy::pooled);
    auto small = must_allocate(*eng, 1 * MiB, kv_cache, strategy::pooled);
    client.launch(big.address, big.requested, 0x33);
    must_free(*eng, big.id);
    eng->defragment();
    must_free(*eng, small.id);
    eng->defragment();
  }
  INFO((sb->lost(0) ? sb->lost(0)->to_string() : std::string("device 0 healthy")));
  CHECK_FALSE(sb->lost(0).has_value());
  CHECK_FALSE(eng->device_lost().has_value());
  auto again = must_allocate(*eng, 4 * MiB, weights);
  fill_region(again, 9);
  CHECK_REGION_PATTERN(again, 9);
}

TEST_CASE("cuda on the stand-in: a faulting copy during sleep loses the device, and says so",
          "[cuda_standin][engine][sticky]") {
  standin_backend sb;
  auto eng = make_engine(*sb);
  auto regions = populate(*eng);
  REQUIRE(standin().inject_copy_fault(CUDA_ERROR_ILLEGAL_ADDRESS) == CUDA_SUCCESS);
  auto slept = eng->sleep(sleep_policy::level(1));
  REQUIRE_FALSE(slept.ok());
  INFO(slept.error().to_string());
  CHECK(slept.error().code() == engine_errc::device_failure);
  CHECK(slept.error().message().find("device is lost") != std::string::npos);
  REQUIRE(eng->device_lost().has_value());
  CHECK(eng->device_lost()->name() == "CUDA_ERROR_ILLEGAL_ADDRESS");

  // Nothing more reaches the driver for device 0, whatever the engine is asked.
  const auto calls = standin().context_calls();
  CHECK(error_of(eng->allocate({.size = 4 * MiB, .tag = weights})) == engine_errc::device_failure);
  CHECK(error_of(eng->sleep(sleep_policy::level(2))) == engine_errc::device_failure);
  eng->trim();
  eng->defragment();
  eng.reset();  // the destructor unmaps nothing on a lost device either
  CHECK(standin().context_calls() == calls);
}
