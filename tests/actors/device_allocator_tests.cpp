// The device allocator actor under CAF's deterministic test coordinator: every request
// and error, sleep and wake, requests queued or failed during a transition, faults
// during wake. Its pressure responses are in pressure_response_tests.cpp.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/all.hpp"

#include "actors/allocator_fixture.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace gpumem::test::allocator;
using actors::asleep_behaviour;

} // namespace

TEST_CASE("allocate, touch and deallocate answer handles and ok", "[actors][allocator]") {
  fixture fx;
  auto a = fx.allocate(3 * MiB, "weights");
  CHECK(a.device == 0);
  CHECK(a.tag == "weights");
  CHECK(a.requested == 3 * MiB);
  CHECK(a.size >= a.requested);
  CHECK(a.address != 0);
  auto b = fx.allocate(4096, "kv_cache", strategy::first_fit);
  auto c = fx.allocate(5 * MiB, "activations", strategy::dedicated);
  CHECK(c.size % granularity == 0);
  CHECK(fx.must<ok_atom>(touch_atom::value, a.region) == ok_atom::value);
  CHECK(fx.status().live_regions == 3);
  CHECK(fx.must<ok_atom>(deallocate_atom::value, b.region) == ok_atom::value);
  CHECK(fx.must<ok_atom>(deallocate_at_atom::value, c.address) == ok_atom::value);
  auto s = fx.stats();
  CHECK(s.device == 0);
  CHECK(s.total.allocations == 3);
  CHECK(s.total.frees == 2);
  CHECK(s.total.requested.current == static_cast<std::int64_t>(3 * MiB));
  auto info = fx.must<device_info>(info_atom::value);
  CHECK(info.backend == "host");
  CHECK(info.total_bytes == capacity);
  CHECK(info.granularity == granularity);
  CHECK(info.free_bytes < capacity);
  CHECK(info.state == device_state::awake);
  auto snap = fx.must<memory_snapshot>(snapshot_atom::value);
  auto parsed = core::memory_snapshot::from_json(snap.json);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->regions.size() == 1);
  CHECK(parsed->regions[0].id == a.region);
}

TEST_CASE("a batch allocates everything or nothing", "[actors][allocator][batch]") {
  fixture fx;
  auto before = fx.stats();
  batch_allocation_request good;
  good.requests = {request_of(1 * MiB, "weights"), request_of(4096, "kv_cache"),
                   request_of(6 * MiB, "activations", strategy::dedicated)};
  auto done = fx.must<batch_allocation_response>(batch_allocate_atom::value, good);
  REQUIRE(done.regions.size() == 3);
  CHECK(done.regions[0].tag == "weights");
  CHECK(done.regions[1].requested == 4096);
  CHECK(done.regions[2].tag == "activations");

  auto middle = fx.stats();
  batch_allocation_request bad;
  bad.requests = {request_of(2 * MiB, "weights"), request_of(1 * MiB, "kv_cache"),
                  request_of(std::uint64_t{1} << 40, "activations")};
  auto r = fx.ask<batch_allocation_response>(batch_allocate_atom::value, bad);
  REQUIRE(r.error);
  CHECK(r.code() == gpumem_errc::too_large);
  CHECK(error_message(*r.error).find("undone") != std::string::npos);
  auto after = fx.stats();
  CHECK(after.total.allocated.current == middle.total.allocated.current);
  CHECK(after.total.allocations == middle.total.allocations + 2);
  CHECK(after.total.frees == middle.total.frees + 2);
  CHECK(fx.status().live_regions == 3);
  CHECK(before.total.allocations == 0);

  // An empty batch is an empty answer.
  CHECK(fx.must<batch_allocation_response>(batch_allocate_atom::value,
                                           batch_allocation_request{})
          .regions.empty());
}

TEST_CASE("strategy configured takes the tag's configured strategy", "[actors][allocator]") {
  fixture fx{asleep_behaviour::queue, {}, [](actors::device_allocator_options& o) {
               o.default_strategy = core::strategy::pooled;
               o.tag_strategies = {{"kv_cache", core::strategy::dedicated}};
             }};
  // dedicated gives a region its own chunks: 4 KiB occupies a whole 2 MiB granule.
  auto kv = fx.allocate(4 * KiB, "kv_cache");
  CHECK(kv.size == granularity);
  auto other = fx.allocate(4 * KiB, "activations");
  CHECK(other.size < granularity);
  // An explicit strategy wins over the configuration.
  auto pooled_kv = fx.allocate(4 * KiB, "kv_cache", strategy::pooled);
  CHECK(pooled_kv.size < granularity);
  allocation_request bad;
  bad.size = 4096;
  bad.how = static_cast<strategy>(42);
  auto r = fx.ask<region_handle>(allocate_atom::value, bad);
  REQUIRE(r.error);
  CHECK(r.code() == gpumem_errc::unknown_strategy);
}

TEST_CASE("a batch free frees everything or nothing", "[actors][allocator][batch]") {
  fixture fx;
  std::vector<region_handle> regions;
  for (int i = 0; i < 4; ++i)
    regions.push_back(fx.allocate(64 * KiB, "kv_cache"));
  REQUIRE(fx.status().live_regions == 4);

  auto refused = [&](batch_deallocation_request batch, gpumem_errc code,
                     std::uint64_t live = 4) {
    auto r = fx.ask<ok_atom>(batch_deallocate_atom::value, std::move(batch));
    REQUIRE(r.error);
    INFO(fx.sys.render(*r.error));
    CHECK(r.code() == code);
    CHECK(error_message(*r.error).find("nothing freed") != std::string::npos);
    CHECK(fx.status().live_regions == live);
  };
  auto unknown = regions;
  unknown.back().region = 999999;
  refused({unknown}, gpumem_errc::unknown_region);
  auto twice = regions;
  twice.push_back(regions[1]);
  refused({twice}, gpumem_errc::double_free);
  auto foreign = regions;
  foreign[2].device = 5;
  refused({foreign}, gpumem_errc::unknown_device);

  CHECK(fx.must<ok_atom>(batch_deallocate_atom::value, batch_deallocation_request{regions}) ==
        ok_atom::value);
  CHECK(fx.status().live_regions == 0);
  refused({{regions[0]}}, gpumem_errc::double_free, 0);
}

TEST_CASE("bad input is answered with the matching gpumem error", "[actors][allocator][errors]") {
  fixture fx;
  auto code_of = [&](auto&&... xs) {
    auto r = fx.ask<region_handle>(xs...);
    INFO((r.error ? fx.sys.render(*r.error) : std::string{"a value"}));
    REQUIRE(r.error);
    return r.code();
  };
  CHECK(code_of(allocate_atom::value, request_of(0)) == gpumem_errc::zero_size);
  CHECK(code_of(allocate_atom::value, request_of(std::uint64_t{1} << 40)) ==
        gpumem_errc::too_large);
  CHECK(code_of(allocate_atom::value, request_of(4096, "")) == gpumem_errc::invalid_tag);
  CHECK(code_of(allocate_atom::value, request_of(4096, "x", static_cast<strategy>(9))) ==
        gpumem_errc::unknown_strategy);
  auto bad_alignment = request_of(4096);
  bad_alignment.alignment = 3;
  CHECK(code_of(allocate_atom::value, bad_alignment) == gpumem_errc::invalid_alignment);

  auto ok_code = [&](auto&&... xs) {
    auto r = fx.ask<ok_atom>(xs...);
    REQUIRE(r.error);
    return r.code();
  };
  CHECK(ok_code(deallocate_atom::value, std::uint64_t{12345}) == gpumem_errc::unknown_region);
  CHECK(ok_code(touch_atom::value, std::uint64_t{12345}) == gpumem_errc::unknown_region);
  CHECK(ok_code(deallocate_at_atom::value, std::uint64_t{0x1000}) ==
        gpumem_errc::unknown_region);
  auto a = fx.allocate(4096);
  CHECK(fx.must<ok_atom>(deallocate_atom::value, a.region) == ok_atom::value);
  CHECK(ok_code(deallocate_atom::value, a.region) == gpumem_errc::double_free);

  auto sleep = fx.ask<transition_report>(sleep_atom::value, sleep_policy::at_level(7));
  REQUIRE(sleep.error);
  CHECK(sleep.code() == gpumem_errc::invalid_config);
  auto wake = fx.ask<transition_report>(wake_atom::value, std::vector<std::string>{});
  REQUIRE(wake.error);
  CHECK(wake.code() == gpumem_errc::invalid_transition);
  // Still awake and serving.
  CHECK(fx.status().state == device_state::awake);
  fx.allocate(4096);
}

TEST_CASE("sleep then wake keeps the bytes at the same address", "[actors][allocator][sleep]") {
  fixture fx;
  auto w = fx.allocate(3 * MiB + 12345, "weights");
  auto kv = fx.allocate(2 * MiB, "kv_cache");
  fill(w, 11);
  auto slept = fx.must<transition_report>(sleep_atom::value, sleep_policy::at_level(1));
  CHECK(slept.kind == transition_kind::sleep);
  CHECK(slept.device == 0);
  CHECK(slept.bytes_backed_up >= w.requested);
  auto st = fx.status();
  CHECK(st.state == device_state::asleep);
  CHECK(st.asleep_tags.size() == 2);
  CHECK(fx.must<device_info>(info_atom::value).state == device_state::asleep);

  auto woke = fx.must<transition_report>(wake_atom::value, std::vector<std::string>{});
  CHECK(woke.kind == transition_kind::wake);
  CHECK(woke.bytes_restored >= w.requested);
  CHECK(fx.status().state == device_state::awake);
  CHECK(intact(w, 11));
  auto snap = core::memory_snapshot::from_json(
    fx.must<memory_snapshot>(snapshot_atom::value).json);
  REQUIRE(snap.ok());
  bool found = false;
  for (const auto& r : snap->regions)
    if (r.id == w.region) {
      found = true;
      CHECK(r.address == w.address);
    }
  CHECK(found);
  CHECK(fx.must<ok_atom>(deallocate_atom::value, kv.region) == ok_atom::value);
  CHECK(fx.stats().sleeps == 1);
}

TEST_CASE("queue mode: requests during a transition are answered in order after it",
          "[actors][allocator][transition]") {
  fixture fx;
  auto w = fx.allocate(4 * MiB, "weights");
  fill(w, 3);
  auto act = fx.allocate(1 * MiB, "activations");

  // The sleep starts; its first poll waits on the test clock.
  fx.send(sleep_atom::value, sleep_policy::at_level(1, {"weights"}));
  fx.sched.run();
  fx.send(allocate_atom::value, request_of(2 * MiB, "activations"));
  fx.send(deallocate_atom::value, act.region);
  fx.send(wake_atom::value, std::vector<std::string>{"weights"});
  fx.send(allocate_atom::value, request_of(4096, "weights"));
  fx.send(stats_atom::value);
  fx.send(status_atom::value);
  fx.send(snapshot_atom::value);
  fx.send(info_atom::value);
  fx.sched.run();
  // Only the observers answered, during the transition.
  auto stats = fx.next<statistics>();
  REQUIRE(stats.value);
  CHECK(stats.value->total.allocations == 2);
  auto status = fx.next<device_status>();
  REQUIRE(status.value);
  CHECK(status.value->state == device_state::falling_asleep);
  CHECK(status.value->pending_requests == 4);
  CHECK(fx.next<memory_snapshot>().value);
  auto info = fx.next<device_info>();
  REQUIRE(info.value);
  CHECK(info.value->state == device_state::falling_asleep);
  CHECK_FALSE(fx.next<transition_report>().answered());

  fx.drive();
  // The sleep's report, then the queued requests in their order; the wake ran in
  // between, and the weights allocation waited for it.
  auto slept = fx.next<transition_report>();
  REQUIRE(slept.value);
  CHECK(slept.value->kind == transition_kind::sleep);
  auto a2 = fx.next<region_handle>();
  REQUIRE(a2.value);
  CHECK(a2.value->tag == "activations");
  CHECK(fx.next<ok_atom>().value);
  auto woke = fx.next<transition_report>();
  REQUIRE(woke.value);
  CHECK(woke.value->kind == transition_kind::wake);
  auto w2 = fx.next<region_handle>();
  REQUIRE(w2.value);
  CHECK(w2.value->tag == "weights");
  CHECK_FALSE(fx.next<region_handle>().answered());
  CHECK(intact(w, 3));
  auto st = fx.status();
  CHECK(st.state == device_state::awake);
  CHECK(st.pending_requests == 0);
  CHECK(st.live_regions == 3);
}

TEST_CASE("fail mode: requests during a transition fail at once",
          "[actors][allocator][transition]") {
  fixture fx{asleep_behaviour::fail};
  auto w = fx.allocate(4 * MiB, "weights");
  fx.send(sleep_atom::value, sleep_policy::at_level(1));
  fx.sched.run();
  fx.send(allocate_atom::value, request_of(4096, "activations"));
  fx.send(touch_atom::value, w.region);
  fx.send(wake_atom::value, std::vector<std::string>{});
  fx.send(stats_atom::value);
  fx.sched.run();
  auto a = fx.next<region_handle>();
  REQUIRE(a.error);
  CHECK(a.code() == gpumem_errc::device_asleep);
  CHECK(error_message(*a.error).find("a sleep is in progress") != std::string::npos);
  auto t = fx.next<ok_atom>();
  REQUIRE(t.error);
  CHECK(t.code() == gpumem_errc::device_asleep);
  // A second transition is refused as such.
  auto wk = fx.next<transition_report>();
  REQUIRE(wk.error);
  CHECK(wk.code() == gpumem_errc::transition_in_progress);
  CHECK(fx.next<statistics>().value);

  fx.drive();
  auto slept = fx.next<transition_report>();
  REQUIRE(slept.value);
  // Asleep: the sleeping tag fails at once, another tag is served.
  auto r = fx.ask<region_handle>(allocate_atom::value, request_of(4096, "weights"));
  REQUIRE(r.error);
  CHECK(r.code() == gpumem_errc::device_asleep);
  CHECK(error_message(*r.error).find("weights") != std::string::npos);
  auto other = fx.allocate(4096, "fresh_tag");
  CHECK(other.tag == "fresh_tag");
  CHECK(fx.status().pending_requests == 0);
}

TEST_CASE("queue mode: a request for a sleeping tag waits for the wake",
          "[actors][allocator][sleep]") {
  fixture fx;
  auto w = fx.allocate(2 * MiB, "weights");
  fx.allocate(2 * MiB, "kv_cache");
  fx.must<transition_report>(sleep_atom::value, sleep_policy::at_level(1, {"kv_cache"}));
  fx.send(allocate_atom::value, request_of(1 * MiB, "kv_cache"));
  fx.drive();
  CHECK_FALSE(fx.next<region_handle>().answered());
  CHECK(fx.status().pending_requests == 1);
  // Awake tags are served meanwhile.
  fx.allocate(4096, "weights");
  CHECK(fx.must<ok_atom>(touch_atom::value, w.region) == ok_atom::value);
  // A batch touching the sleeping tag waits too.
  batch_allocation_request batch;
  batch.requests = {request_of(4096, "weights"), request_of(4096, "kv_cache")};
  fx.send(batch_allocate_atom::value, batch);
  fx.drive();
  CHECK(fx.status().pending_requests == 2);

  auto woke = fx.must<transition_report>(wake_atom::value, std::vector<std::string>{});
  CHECK(woke.kind == transition_kind::wake);
  auto a = fx.next<region_handle>();
  REQUIRE(a.value);
  CHECK(a.value->tag == "kv_cache");
  auto b = fx.next<batch_allocation_response>();
  REQUIRE(b.value);
  CHECK(b.value->regions.size() == 2);
  CHECK(fx.status().pending_requests == 0);
}

TEST_CASE("a fault during wake is answered; the device stays asleep and wakes later",
          "[actors][allocator][faults]") {
  // A map fault fails when the wake begins; a copy fault while advance() runs it.
  auto point = GENERATE(cuda::fault_point::map, cuda::fault_point::copy);
  INFO((point == cuda::fault_point::map ? "map fault" : "copy fault"));
  fixture fx;
  auto w = fx.allocate(6 * MiB, "weights");
  fill(w, 77);
  fx.must<transition_report>(sleep_atom::value, sleep_policy::at_level(1));
  fx.backend.inject_fault(point, 1, cuda::error_code::out_of_memory);
  auto failed = fx.ask<transition_report>(wake_atom::value, std::vector<std::string>{});
  fx.backend.clear_faults();
  REQUIRE(failed.error);
  INFO(fx.sys.render(*failed.error));
  CHECK(failed.code() == gpumem_errc::device_failure);
  auto st = fx.status();
  CHECK(st.state == device_state::asleep);
  CHECK(st.asleep_tags == std::vector<std::string>{"weights"});
  CHECK(fx.stats().failed_transitions == 1);

  auto woke = fx.must<transition_report>(wake_atom::value, std::vector<std::string>{});
  CHECK(woke.bytes_restored >= w.requested);
  CHECK(fx.status().state == device_state::awake);
  CHECK(intact(w, 77));
}

TEST_CASE("a sticky copy fault loses the device: status says so, requests are refused",
          "[actors][allocator][faults]") {
  fixture fx;
  auto w = fx.allocate(6 * MiB, "weights");
  CHECK(fx.status().lost.empty());
  fx.backend.inject_fault(cuda::fault_point::copy, 1, cuda::error_code::illegal_address);
  auto failed = fx.ask<transition_report>(sleep_atom::value, sleep_policy::at_level(1));
  fx.backend.clear_faults();
  REQUIRE(failed.error);
  INFO(fx.sys.render(*failed.error));
  CHECK(failed.code() == gpumem_errc::device_failure);
  auto st = fx.status();
  INFO(st.lost);
  CHECK(st.lost.find("CUDA_ERROR_ILLEGAL_ADDRESS") != std::string::npos);
  auto refused = fx.ask<region_handle>(allocate_atom::value, allocation_request{.size = 1 * MiB,
                                                                                .tag = "weights"});
  REQUIRE(refused.error);
  CHECK(refused.code() == gpumem_errc::device_failure);
  CHECK(fx.sys.render(*refused.error).find("lost") != std::string::npos);
  (void)w;
}

TEST_CASE("trim and defragment answer reports", "[actors][allocator]") {
  fixture fx;
  auto a = fx.allocate(8 * MiB, "activations");
  fx.must<ok_atom>(deallocate_atom::value, a.region);
  auto t = fx.must<trim_report>(trim_atom::value);
  CHECK(t.bytes_released > 0);
  auto d = fx.must<defragment_report>(defragment_atom::value);
  CHECK(d.device == 0);
}

TEST_CASE("an idle allocator gives back the cache its engine kept idle for cache_decay",
          "[actors][allocator][cache]") {
  core::engine_config engine;
  engine.cache_decay = std::chrono::milliseconds{20};
  fixture fx(asleep_behaviour::queue, {},
             [](actors::device_allocator_options& o) {
               o.cache_check_interval = std::chrono::milliseconds{5};
             },
             engine);
  // No drive(): it fires timers until none is left, and the check's comes back for ever.
  fx.send(allocate_atom::value, request_of(8 * MiB, "activations"));
  fx.sched.run();
  auto made = fx.next<region_handle>();
  REQUIRE(made.value);
  fx.send(deallocate_atom::value, made.value->region);
  fx.sched.run();
  REQUIRE(fx.next<ok_atom>().value);
  auto physical = [&] {
    fx.send(stats_atom::value);
    fx.sched.run();
    auto stats = fx.next<statistics>();
    REQUIRE(stats.value);
    return stats.value->total.reserved.current;
  };
  // Nothing but the check's timer runs: each firing asks the engine, on its own
  // steady clock, for what has been idle 20 ms.
  test::wait_until("the allocator to give back its idle cache", [&] {
    fx.sched.trigger_timeouts();
    fx.sched.run();
    return physical() == 0;
  });
  CHECK(fx.backend.current_usage().physical_bytes == 0);
}

TEST_CASE("requests still waiting when the allocator exits are answered with an error",
          "[actors][allocator][transition]") {
  fixture fx;
  fx.allocate(4 * MiB, "weights");
  fx.send(sleep_atom::value, sleep_policy::at_level(1));
  fx.sched.run();
  fx.send(allocate_atom::value, request_of(4096, "activations"));
  fx.sched.run();
  fx.self->send_exit(fx.aut, caf::exit_reason::user_shutdown);
  fx.sched.run();
  auto sleep = fx.next<transition_report>();
  REQUIRE(sleep.error);
  auto alloc = fx.next<region_handle>();
  REQUIRE(alloc.error);
}
