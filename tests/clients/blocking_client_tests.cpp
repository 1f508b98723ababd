// The blocking client over a runtime in the process: every operation, every error as a
// value, tag scopes, deadlines against a runtime that never answers or is gone, many
// threads at once, and a sleep and wake that keep the weights' bytes.

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "clients/client_fixture.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "support/wait.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;
using client::blocking_client;
using messages::gpumem_errc;

template <class T>
gpumem_errc code_of(const client::result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().code;
}

} // namespace

TEST_CASE("blocking client: allocate, touch, deallocate; the tag from the scope",
          "[clients][blocking]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};

  auto plain = c.allocate(4096);
  REQUIRE(plain.ok());
  CHECK(plain->tag == "default");
  CHECK(plain->size >= 4096);
  {
    auto outer = c.scope("kv_cache");
    auto a = c.allocate(1 * MiB);
    REQUIRE(a.ok());
    CHECK(a->tag == "kv_cache");
    {
      auto inner = c.scope("weights");
      auto b = c.allocate(8192);
      REQUIRE(b.ok());
      CHECK(b->tag == "weights");
      auto named = c.allocate(8192, "activations");  // a tag named wins over the scope
      REQUIRE(named.ok());
      CHECK(named->tag == "activations");
      CHECK(c.deallocate(*named).ok());
      CHECK(c.deallocate(*b).ok());
    }
    std::string seen;
    std::thread other([&] { seen = c.allocate(4096).ok() ? "" : "failed"; });
    other.join();
    CHECK(seen.empty());
    CHECK(c.touch(*a).ok());
    CHECK(c.deallocate(*a).ok());
  }
  CHECK(client::tag_depth() == 0);
  CHECK(c.deallocate(*plain).ok());

  client::allocation_spec spec;
  spec.size = 64 * KiB;
  spec.device = 1;
  spec.alignment = 4096;
  spec.how = messages::strategy::dedicated;
  auto placed = c.allocate(spec);
  REQUIRE(placed.ok());
  CHECK(placed->device == 1);
  CHECK(placed->address % 4096 == 0);
  CHECK(c.deallocate(*placed).ok());
}

TEST_CASE("blocking client: errors are values with the protocol's code and message",
          "[clients][blocking][errors]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};

  CHECK(code_of(c.allocate(0)) == gpumem_errc::zero_size);
  CHECK(code_of(c.allocate(std::uint64_t{1} << 50)) == gpumem_errc::too_large);
  client::allocation_spec misaligned{4096, "", messages::strategy::configured, 3};
  CHECK(code_of(c.allocate(misaligned)) == gpumem_errc::invalid_alignment);
  client::allocation_spec nowhere{4096, "", messages::strategy::configured, 0, 7};
  auto r = c.allocate(nowhere);
  CHECK(code_of(r) == gpumem_errc::unknown_device);
  CHECK_FALSE(r.error().message.empty());
  {
    auto empty = c.scope("");  // a scope without a name: the engine refuses the tag
    CHECK(code_of(c.allocate(4096)) == gpumem_errc::invalid_tag);
  }

  auto a = c.allocate(4096);
  REQUIRE(a.ok());
  REQUIRE(c.deallocate(*a).ok());
  CHECK(code_of(c.deallocate(*a)) == gpumem_errc::double_free);
  CHECK(code_of(c.touch(*a)) == gpumem_errc::unknown_region);
  auto made_up = *a;
  made_up.region += 1000;
  CHECK(code_of(c.deallocate(made_up)) == gpumem_errc::unknown_region);
  made_up.device = 9;
  CHECK(code_of(c.deallocate(made_up)) == gpumem_errc::unknown_device);

  CHECK(code_of(c.sleep(7)) == gpumem_errc::invalid_config);
  CHECK(code_of(c.sleep(-1)) == gpumem_errc::invalid_config);
  CHECK(c.wake_up({"no_such_tag"}).ok());  // nothing of it asleep: nothing to do
  CHECK(code_of(c.snapshot(-1)) == gpumem_errc::unknown_device);
  CHECK(code_of(c.snapshot(2)) == gpumem_errc::unknown_device);
  CHECK(code_of(c.subscribe(nullptr)) == gpumem_errc::invalid_config);
  CHECK(code_of(c.subscribe([](const messages::pressure_event&) {}, 5)) ==
        gpumem_errc::unknown_device);

  // A batch with one bad request allocates nothing.
  auto before = c.statistics();
  REQUIRE(before.ok());
  auto batch = c.allocate_batch({{4096}, {0}, {8192}});
  CHECK(code_of(batch) == gpumem_errc::zero_size);
  auto after = c.statistics();
  REQUIRE(after.ok());
  CHECK(after->total.total.allocated.current == before->total.total.allocated.current);
}

TEST_CASE("blocking client: batches, statistics, snapshot, status, devices",
          "[clients][blocking]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};
  auto scope = c.scope("kv_cache");

  auto batch = c.allocate_batch({{4096}, {1 * MiB, "weights"}, {64 * KiB, "", {}, 0, 1}});
  REQUIRE(batch.ok());
  REQUIRE(batch->size() == 3);
  CHECK((*batch)[0].tag == "kv_cache");
  CHECK((*batch)[1].tag == "weights");
  CHECK((*batch)[2].device == 1);

  auto stats = c.statistics();
  REQUIRE(stats.ok());
  CHECK(stats->devices.size() == 2);
  CHECK(stats->total.total.allocated.current >= static_cast<std::int64_t>(4096 + MiB + 64 * KiB));

  auto snap = c.snapshot(1);
  REQUIRE(snap.ok());
  CHECK(snap->device == 1);
  CHECK(snap->json.find("kv_cache") != std::string::npos);

  auto status = c.status();
  REQUIRE(status.ok());
  CHECK(status->devices.size() == 2);
  auto devices = c.devices();
  REQUIRE(devices.ok());
  REQUIRE(devices->size() == 2);
  CHECK((*devices)[0].backend == "host");

  REQUIRE(c.deallocate_batch(*batch).ok());
  CHECK(code_of(c.deallocate_batch(*batch)) == gpumem_errc::double_free);
  auto empty = c.statistics();
  REQUIRE(empty.ok());
  CHECK(empty->total.total.allocated.current == 0);
}

TEST_CASE("blocking client: sleep keeps the weights' bytes, wake brings them back",
          "[clients][blocking][sleep]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};

  auto weights = c.allocate(3 * MiB + 123, "weights");
  auto kv = c.allocate(2 * MiB, "kv_cache");
  REQUIRE(weights.ok());
  REQUIRE(kv.ok());
  test::fill_pattern(weights->address, weights->requested, 7);

  auto awake = c.is_sleeping();
  REQUIRE(awake.ok());
  CHECK_FALSE(*awake);
  auto slept = c.sleep(1);
  REQUIRE(slept.ok());
  CHECK(slept->size() == 2);
  auto asleep = c.is_sleeping();
  REQUIRE(asleep.ok());
  CHECK(*asleep);
  auto kv_asleep = c.is_sleeping({"kv_cache"});
  REQUIRE(kv_asleep.ok());
  CHECK(*kv_asleep);
  auto other = c.is_sleeping({"no_such_tag"});
  REQUIRE(other.ok());
  CHECK_FALSE(*other);

  REQUIRE(c.wake_up({"weights"}).ok());
  CHECK(test::has_pattern(weights->address, weights->requested, 7));
  auto still = c.is_sleeping({"kv_cache"});
  REQUIRE(still.ok());
  CHECK(*still);
  REQUIRE(c.wake_up().ok());
  auto done = c.is_sleeping();
  REQUIRE(done.ok());
  CHECK_FALSE(*done);
  CHECK(c.deallocate(*weights).ok());
  CHECK(c.deallocate(*kv).ok());
}

TEST_CASE("blocking client: a level-0 sleep keeps exactly the tags it is told to",
          "[clients][blocking][sleep]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};
  auto kv = c.allocate(2 * MiB, "kv_cache");
  auto scratch = c.allocate(2 * MiB, "scratch");
  REQUIRE(kv.ok());
  REQUIRE(scratch.ok());
  test::fill_pattern(kv->address, kv->requested, 3);

  auto slept = c.sleep(messages::sleep_policy::backing_up({"kv_cache"}));
  REQUIRE(slept.ok());
  std::uint64_t backed_up = 0, discarded = 0;
  for (const auto& r : *slept) {
    backed_up += r.bytes_backed_up;
    discarded += r.bytes_discarded;
  }
  CHECK(backed_up == kv->requested);
  CHECK(discarded == scratch->requested);
  REQUIRE(c.wake_up().ok());
  CHECK(test::has_pattern(kv->address, kv->requested, 3));
  CHECK(code_of(c.sleep(messages::sleep_policy::at_level(7))) == gpumem_errc::invalid_config);
}

TEST_CASE("blocking client: trim and defragment one device at a time",
          "[clients][blocking]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};
  auto big = c.allocate({8 * MiB, "kv_cache", messages::strategy::configured, 0, 0});
  REQUIRE(big.ok());
  REQUIRE(c.deallocate(*big).ok());  // its segment stays mapped as cache

  auto trimmed = c.trim(0);
  REQUIRE(trimmed.ok());
  CHECK(trimmed->device == 0);
  CHECK(trimmed->bytes_released >= 8 * MiB);
  auto again = c.trim(0);
  REQUIRE(again.ok());
  CHECK(again->bytes_released == 0);
  auto defragmented = c.defragment(1);
  REQUIRE(defragmented.ok());
  CHECK(defragmented->device == 1);
  CHECK(code_of(c.trim(2)) == gpumem_errc::unknown_device);
  CHECK(code_of(c.defragment(-1)) == gpumem_errc::unknown_device);
}

TEST_CASE("blocking client: pressure events reach a subscriber until it is cancelled",
          "[clients][blocking][pressure]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};
  std::mutex m;
  std::vector<messages::pressure_event> events;
  auto sub = c.subscribe(
    [&](const messages::pressure_event& e) {
      std::lock_guard<std::mutex> g{m};
      events.push_back(e);
    },
    0);
  REQUIRE(sub.ok());
  CHECK(sub->active());

  // 85% of device 0 in use: warning.
  auto big = c.allocate(218 * MiB, "kv_cache", std::nullopt);
  REQUIRE(big.ok());
  REQUIRE(big->device == 0);
  auto saw_warning = [&] {
    std::lock_guard<std::mutex> g{m};
    for (const auto& e : events)
      if (e.device == 0 && e.level != messages::pressure_level::normal)
        return true;
    return false;
  };
  test::wait_until("a pressure event for device 0", saw_warning);
  sub->cancel();
  CHECK_FALSE(sub->active());
  CHECK(c.deallocate(*big).ok());
}

TEST_CASE("blocking client: every call ends by its deadline", "[clients][blocking][deadline]") {
  test::client_fixture fx;
  {
    blocking_client silent{fx.silent_endpoint()};
    CHECK(code_of(silent.allocate(4096)) == gpumem_errc::timeout);
    CHECK(code_of(silent.allocate(4096, "", 50ms)) == gpumem_errc::timeout);
    messages::region_handle h;
    CHECK(code_of(silent.deallocate(h)) == gpumem_errc::timeout);
    CHECK(code_of(silent.touch(h)) == gpumem_errc::timeout);
    CHECK(code_of(silent.allocate_batch({{4096}})) == gpumem_errc::timeout);
    CHECK(code_of(silent.deallocate_batch({h})) == gpumem_errc::timeout);
    CHECK(code_of(silent.sleep(1)) == gpumem_errc::timeout);
    CHECK(code_of(silent.wake_up()) == gpumem_errc::timeout);
    CHECK(code_of(silent.is_sleeping()) == gpumem_errc::timeout);
    CHECK(code_of(silent.statistics()) == gpumem_errc::timeout);
    CHECK(code_of(silent.snapshot(0)) == gpumem_errc::timeout);
    CHECK(code_of(silent.status()) == gpumem_errc::timeout);
    CHECK(code_of(silent.devices()) == gpumem_errc::timeout);
    CHECK(code_of(silent.subscribe([](const messages::pressure_event&) {})) ==
          gpumem_errc::timeout);
  }
  fx.stop_silent();

  // A runtime that is gone answers at once with an error (never a hang).
  blocking_client c{fx.endpoint()};
  REQUIRE(fx.rt->shutdown());
  auto r = c.allocate(4096, "", 2s);
  CHECK_FALSE(r.ok());
  CHECK(code_of(c.statistics(2s)) != gpumem_errc::zero_size);
}

TEST_CASE("blocking client: many threads at once lose nothing", "[clients][blocking][threads]") {
  test::client_fixture fx;
  blocking_client c{fx.endpoint()};
  constexpr int threads = 8;
  constexpr int rounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto scope = c.scope("thread" + std::to_string(t));
      for (int i = 0; i < rounds; ++i) {
        auto a = c.allocate(4096 + 512 * (i % 8));
        if (!a || a->tag != "thread" + std::to_string(t) || !c.deallocate(*a))
          ++failures;
      }
    });
  for (auto& th : pool)
    th.join();
  CHECK(failures == 0);
  auto stats = c.statistics();
  REQUIRE(stats.ok());
  CHECK(stats->total.total.allocated.current == 0);
  CHECK(stats->total.total.allocations == static_cast<std::uint64_t>(threads * rounds));
}
