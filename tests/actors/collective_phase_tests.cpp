// One device allocator in a collective transition's two phases, under CAF's
// deterministic test coordinator: prepared, nothing is lost and requests wait (or
// fail); commit finishes; abort, or a hold that runs out, gives back what was there.
// Polls are plain sends (poll_interval 0), so sched.run() settles a prepare and only
// trigger_timeouts() fires the hold.

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "actors/allocator_fixture.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace gpumem::test::allocator;
using actors::asleep_behaviour;
using tags = std::vector<std::string>;
using test::reply;

constexpr std::uint64_t hold_ms = 60'000;

fixture polled_by_sends(asleep_behaviour mode = asleep_behaviour::queue) {
  return fixture{mode, {}, [](actors::device_allocator_options& o) {
                   o.poll_interval = std::chrono::microseconds{0};
                 }};
}

template <class T>
reply<T> settle(fixture& fx) {
  fx.sched.run();
  return fx.next<T>();
}

device_status status_now(fixture& fx) {
  fx.send(status_atom::value);
  auto s = settle<device_status>(fx);
  REQUIRE(s.value);
  return *s.value;
}

} // namespace

TEST_CASE("a prepared sleep keeps every byte in place; requests wait; abort replays them",
          "[actors][allocator][collective]") {
  auto fx = polled_by_sends();
  auto w = fx.allocate(4 * MiB, "weights");
  auto kv = fx.allocate(4 * MiB, "kv_cache");
  fill(w, 1);
  fill(kv, 2);
  fx.send(prepare_sleep_atom::value, sleep_policy::at_level(1), std::uint64_t{7}, hold_ms);
  auto prepared = settle<transition_report>(fx);
  REQUIRE(prepared.value);
  CHECK(prepared.value->bytes_backed_up == w.requested);
  CHECK(prepared.value->bytes_discarded == 0);
  auto st = status_now(fx);
  CHECK(st.prepared_transaction == 7);
  CHECK(st.asleep_tags.empty());
  CHECK(intact(kv, 2));  // nothing discarded before commit

  fx.send(allocate_atom::value, request_of(1 * MiB, "kv_cache"));
  CHECK_FALSE(settle<region_handle>(fx).answered());  // waits: the commit may discard
  fx.send(abort_atom::value, std::uint64_t{7});
  fx.sched.run();
  // The abort replays the queue before it answers: the allocation's answer first.
  auto late = fx.next<region_handle>();
  auto ok = fx.next<ok_atom>();
  CHECK(late.value);
  CHECK(ok.value);
  st = status_now(fx);
  CHECK(st.state == device_state::awake);
  CHECK(st.prepared_transaction == 0);
  CHECK(intact(w, 1));
  CHECK(intact(kv, 2));
}

TEST_CASE("fail mode: a request while prepared is device_asleep at once",
          "[actors][allocator][collective]") {
  auto fx = polled_by_sends(asleep_behaviour::fail);
  fx.allocate(4 * MiB, "weights");
  fx.send(prepare_sleep_atom::value, sleep_policy::at_level(1), std::uint64_t{3}, hold_ms);
  REQUIRE(settle<transition_report>(fx).value);
  fx.send(allocate_atom::value, request_of(1 * MiB, "kv_cache"));
  auto r = settle<region_handle>(fx);
  REQUIRE(r.error);
  CHECK(r.code() == gpumem_errc::device_asleep);
  fx.send(commit_atom::value, std::uint64_t{3});
  auto committed = settle<transition_report>(fx);
  REQUIRE(committed.value);
  CHECK(status_now(fx).asleep_tags == tags{"weights"});
}

TEST_CASE("a prepared transaction nobody commits aborts when its hold runs out",
          "[actors][allocator][collective]") {
  auto fx = polled_by_sends();
  auto kv = fx.allocate(4 * MiB, "kv_cache");
  fill(kv, 3);
  fx.send(prepare_sleep_atom::value, sleep_policy::at_level(2), std::uint64_t{9}, hold_ms);
  REQUIRE(settle<transition_report>(fx).value);
  CHECK(status_now(fx).prepared_transaction == 9);
  REQUIRE(fx.sched.trigger_timeouts() > 0);  // the hold: the coordinator is gone
  fx.sched.run();
  auto st = status_now(fx);
  CHECK(st.prepared_transaction == 0);
  CHECK(st.state == device_state::awake);
  CHECK(intact(kv, 3));
  // A commit that comes too late changes nothing and says so.
  fx.send(commit_atom::value, std::uint64_t{9});
  auto late = settle<transition_report>(fx);
  REQUIRE(late.error);
  CHECK(late.code() == gpumem_errc::invalid_transition);
  CHECK(status_now(fx).state == device_state::awake);
  CHECK(intact(kv, 3));
}

TEST_CASE("a prepared wake restores the bytes; abort leaves the tags asleep with their "
          "backups, and nothing else is touched",
          "[actors][allocator][collective]") {
  auto fx = polled_by_sends();
  auto w = fx.allocate(4 * MiB, "weights");
  auto kv = fx.allocate(4 * MiB, "kv_cache");
  fill(w, 4);
  fill(kv, 5);
  fx.must<transition_report>(sleep_atom::value, sleep_policy::backing_up({"weights"}, {"weights"}));
  fx.must<transition_report>(sleep_atom::value,
                             sleep_policy::backing_up({"kv_cache"}, {"kv_cache"}));
  // Wake weights only, in two phases, and abort.
  fx.send(prepare_wake_atom::value, tags{"weights"}, std::uint64_t{11}, hold_ms);
  auto prepared = settle<transition_report>(fx);
  REQUIRE(prepared.value);
  CHECK(prepared.value->bytes_restored == w.requested);
  fx.send(abort_atom::value, std::uint64_t{11});
  REQUIRE(settle<ok_atom>(fx).value);
  CHECK(status_now(fx).asleep_tags == tags{"weights", "kv_cache"});
  // Wake everything, in two phases, and commit: every backup was kept.
  fx.send(prepare_wake_atom::value, tags{}, std::uint64_t{12}, hold_ms);
  REQUIRE(settle<transition_report>(fx).value);
  fx.send(commit_atom::value, std::uint64_t{12});
  REQUIRE(settle<transition_report>(fx).value);
  CHECK(status_now(fx).asleep_tags.empty());
  CHECK(intact(w, 4));
  CHECK(intact(kv, 5));
}

TEST_CASE("a collective prepare with nothing to move answers an empty report",
          "[actors][allocator][collective]") {
  auto fx = polled_by_sends();
  fx.allocate(1 * MiB, "weights");
  fx.send(prepare_wake_atom::value, tags{}, std::uint64_t{21}, hold_ms);
  auto r = settle<transition_report>(fx);
  REQUIRE(r.value);
  CHECK(r.value->tags.empty());
  fx.send(commit_atom::value, std::uint64_t{21});
  REQUIRE(settle<transition_report>(fx).value);
  fx.send(abort_atom::value, std::uint64_t{99});  // never held here: as it was
  REQUIRE(settle<ok_atom>(fx).value);
  CHECK(status_now(fx).state == device_state::awake);
}
