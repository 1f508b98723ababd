// The Asio client: completion tokens (use_awaitable, callbacks, use_future), every
// completion on the caller's executor and never on a CAF thread, errors as values,
// deadlines, and 1,000 coroutines on one io_context looping allocate and free.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "clients/client_fixture.hpp"
#include "gpumem/client/asio_client.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "support/wait.hpp"

namespace {

namespace asio = boost::asio;
using namespace gpumem;
using namespace std::chrono_literals;
using client::asio_client;
using messages::gpumem_errc;

/// Lines whose expectation failed inside a coroutine (Catch's macros do not compile
/// in GCC 12 coroutines): checked as empty after the io_context ran.
std::vector<int> failed_lines;
#define EXPECT(cond) \
  do {               \
    if (!(cond))     \
      failed_lines.push_back(__LINE__); \
  } while (false)

/// Runs `io` until it has no work left, or the wait limit passes (then FAILs).
void run_bounded(asio::io_context& io) {
  const auto deadline = std::chrono::steady_clock::now() + test::wait_limit;
  while (!io.stopped() && std::chrono::steady_clock::now() < deadline)
    io.run_for(100ms);
  if (!io.stopped())
    FAIL("the io_context still had work after " << test::wait_limit.count() << " s");
}

} // namespace

TEST_CASE("asio client: coroutines, callbacks and futures; completions on the caller's thread",
          "[clients][asio]") {
  test::client_fixture fx;
  asio::io_context io;
  asio_client c{fx.endpoint(), io.get_executor()};
  std::thread::id io_thread;
  int steps = 0;

  asio::co_spawn(
    io,
    [&]() -> asio::awaitable<void> {
      io_thread = std::this_thread::get_id();
      auto scope = c.scope("kv_cache");
      auto a = co_await c.async_allocate({64 * 1024}, asio::use_awaitable);
      EXPECT(std::this_thread::get_id() == io_thread);
      EXPECT(a.ok());
      EXPECT(a->tag == "kv_cache");
      EXPECT((co_await c.async_touch(*a, asio::use_awaitable)).ok());
      EXPECT((co_await c.async_deallocate(*a, asio::use_awaitable)).ok());
      auto again = co_await c.async_deallocate(*a, asio::use_awaitable);
      EXPECT(!(again.ok()));
      EXPECT(again.error().code == gpumem_errc::double_free);
      auto zero = co_await c.async_allocate({0}, asio::use_awaitable);
      EXPECT(!(zero.ok()));
      EXPECT(zero.error().code == gpumem_errc::zero_size);

      // Named first: GCC 12 cannot keep an initializer_list's array in a coroutine frame.
      std::vector<client::allocation_spec> specs(2);
      specs[0] = {4096, "weights"};
      specs[1] = {8192};
      auto batch = co_await c.async_allocate_batch(specs, asio::use_awaitable);
      EXPECT(batch.ok());
      test::fill_pattern((*batch)[0].address, 4096, 9);
      EXPECT((co_await c.async_sleep(1, {}, asio::use_awaitable)).ok());
      std::vector<std::string> weights(1, "weights");
      auto asleep = co_await c.async_is_sleeping(weights, asio::use_awaitable);
      EXPECT(asleep.ok());
      EXPECT(*asleep);
      EXPECT((co_await c.async_wake_up({}, asio::use_awaitable)).ok());
      EXPECT(test::has_pattern((*batch)[0].address, 4096, 9));
      auto stats = co_await c.async_statistics(asio::use_awaitable);
      EXPECT(stats.ok());
      EXPECT(stats->total.total.allocated.current >= 4096 + 8192);
      auto snap = co_await c.async_snapshot(0, asio::use_awaitable);
      EXPECT(snap.ok());
      auto bad_snap = co_await c.async_snapshot(5, asio::use_awaitable);
      EXPECT(!(bad_snap.ok()));
      EXPECT(bad_snap.error().code == gpumem_errc::unknown_device);
      EXPECT((co_await c.async_status(asio::use_awaitable)).ok());
      auto devices = co_await c.async_devices(asio::use_awaitable);
      EXPECT(devices.ok());
      EXPECT(devices->size() == 2);
      auto bad_level = co_await c.async_sleep(9, {}, asio::use_awaitable);
      EXPECT(!(bad_level.ok()));
      EXPECT(bad_level.error().code == gpumem_errc::invalid_config);
      EXPECT((co_await c.async_deallocate_batch(*batch, asio::use_awaitable)).ok());
      auto bad_touch = co_await c.async_touch(*a, asio::use_awaitable);  // freed above
      EXPECT(!bad_touch.ok());
      auto bad_batch = co_await c.async_deallocate_batch(*batch, asio::use_awaitable);
      EXPECT(!bad_batch.ok());
      std::vector<client::allocation_spec> with_zero(2);
      with_zero[0] = {4096};
      with_zero[1] = {0};
      auto zero_batch = co_await c.async_allocate_batch(with_zero, asio::use_awaitable);
      EXPECT(!zero_batch.ok() && zero_batch.error().code == gpumem_errc::zero_size);
      auto no_callback = co_await c.async_subscribe(nullptr, -1, asio::use_awaitable);
      EXPECT(!(no_callback.ok()));
      EXPECT(no_callback.error().code == gpumem_errc::invalid_config);
      ++steps;
    },
    asio::detached);

  // A plain callback: the client's executor runs it.
  c.async_allocate({4096}, [&](client::result<messages::region_handle> r) {
    CHECK(std::this_thread::get_id() == io_thread);
    REQUIRE(r.ok());
    c.async_deallocate(*r, [&](client::result<void> d) {
      CHECK(d.ok());
      ++steps;
    });
  });
  run_bounded(io);
  CHECK(steps == 2);
  CHECK(failed_lines.empty());
  failed_lines.clear();

  // use_future, with the io_context run on another thread.
  io.restart();
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  auto f = c.async_allocate({4096}, asio::use_future);
  REQUIRE(f.wait_for(test::wait_limit) == std::future_status::ready);
  auto r = f.get();
  REQUIRE(r.ok());
  auto g = c.async_deallocate(*r, asio::use_future);
  REQUIRE(g.wait_for(test::wait_limit) == std::future_status::ready);
  CHECK(g.get().ok());
  guard.reset();
  runner.join();
}

TEST_CASE("asio client: pressure events arrive on the client's executor", "[clients][asio]") {
  test::client_fixture fx;
  asio::io_context io;
  asio_client c{fx.endpoint(), io.get_executor()};
  std::atomic<bool> seen{false};
  std::atomic<bool> wrong_thread{false};
  std::thread::id io_thread;
  client::subscription sub;
  messages::region_handle big;
  asio::co_spawn(
    io,
    [&]() -> asio::awaitable<void> {
      io_thread = std::this_thread::get_id();
      auto s = co_await c.async_subscribe(
        [&](const messages::pressure_event& e) {
          if (std::this_thread::get_id() != io_thread)
            wrong_thread = true;
          if (e.device == 0 && e.level != messages::pressure_level::normal)
            seen = true;
        },
        0, asio::use_awaitable);
      EXPECT(s.ok());
      sub = std::move(*s);
      auto a = co_await c.async_allocate({218 * MiB, "kv_cache", {}, 0, 0}, asio::use_awaitable);
      EXPECT(a.ok());
      big = *a;
    },
    asio::detached);
  // The event may come before the allocation's answer (the monitor reads the device's
  // memory, which the allocation filled before its reply): wait for both, keeping the
  // io_context running meanwhile.
  auto busy = asio::make_work_guard(io);
  const auto deadline = std::chrono::steady_clock::now() + test::wait_limit;
  while (!(seen && big.size > 0) && std::chrono::steady_clock::now() < deadline)
    io.run_for(20ms);
  busy.reset();
  CHECK(seen);
  CHECK(big.size > 0);
  CHECK_FALSE(wrong_thread);
  CHECK(failed_lines.empty());
  failed_lines.clear();
  sub.cancel();
  io.restart();
  std::string freed = "no answer";
  c.async_deallocate(big, [&](client::result<void> r) {
    freed = r.ok() ? "" : r.error().to_string();
  });
  run_bounded(io);
  CHECK(freed == "");
}

TEST_CASE("asio client: a runtime that never answers completes at the deadline",
          "[clients][asio][deadline]") {
  test::client_fixture fx;
  {
    asio::io_context io;
    asio_client c{fx.silent_endpoint(), io.get_executor()};
    int timeouts = 0;
    auto count = [&](auto r) { timeouts += !r.ok() && r.error().code == gpumem_errc::timeout; };
    c.async_allocate({4096}, count);
    c.async_allocate({4096}, count, 30ms);
    c.async_deallocate(messages::region_handle{}, count);
    c.async_statistics(count);
    c.async_sleep(1, {}, count);
    c.async_wake_up({}, count);
    c.async_is_sleeping({}, count);
    c.async_snapshot(0, count);
    c.async_subscribe([](const messages::pressure_event&) {}, -1, count);
    run_bounded(io);
    CHECK(timeouts == 9);
  }
  fx.stop_silent();
}

TEST_CASE("asio client: a client destroyed with calls in flight completes them all",
          "[clients][asio][deadline]") {
  test::client_fixture fx;
  asio::io_context io;
  int completed = 0;
  {
    asio_client c{fx.silent_endpoint(), io.get_executor()};
    for (int i = 0; i < 10; ++i)
      c.async_allocate({4096}, [&](auto r) { completed += !r.ok(); }, 60s);
  }
  run_bounded(io);
  CHECK(completed == 10);
  fx.stop_silent();
}

TEST_CASE("asio client: 1,000 coroutines looping allocate and free lose no completion",
          "[clients][asio][many]") {
  test::client_fixture fx;
  asio::io_context io;
  asio_client c{fx.endpoint(), io.get_executor()};
  constexpr int coroutines = 1000;
  constexpr int rounds = 20;
  std::atomic<int> finished{0};
  std::atomic<int> completions{0};
  std::atomic<int> failures{0};
  std::atomic<bool> off_thread{false};
  const auto io_thread = std::this_thread::get_id();
  for (int k = 0; k < coroutines; ++k)
    asio::co_spawn(
      io,
      [&, k]() -> asio::awaitable<void> {
        for (int i = 0; i < rounds; ++i) {
          auto a = co_await c.async_allocate({256 + 64 * static_cast<std::uint64_t>((k + i) % 64)},
                                             asio::use_awaitable);
          ++completions;
          off_thread = off_thread || std::this_thread::get_id() != io_thread;
          if (!a) {
            ++failures;
            continue;
          }
          auto d = co_await c.async_deallocate(*a, asio::use_awaitable);
          ++completions;
          if (!d)
            ++failures;
        }
        ++finished;
      },
      asio::detached);
  run_bounded(io);
  CHECK(finished == coroutines);
  CHECK(completions == 2 * coroutines * rounds);
  CHECK(failures == 0);
  CHECK_FALSE(off_thread);
  client::blocking_client check{fx.endpoint()};
  auto stats = check.statistics();
  REQUIRE(stats.ok());
  CHECK(stats->total.total.allocated.current == 0);
  CHECK(stats->total.total.allocations == static_cast<std::uint64_t>(coroutines * rounds));
}
