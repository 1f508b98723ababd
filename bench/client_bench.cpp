// Client benchmarks: what the clients add to the actor path, from outside the actor
// system (the in-run baselines are BM_ActorAllocFree, an event-based actor's round
// trips, and BM_EngineAllocFreeDirect).
//
//   BM_BlockingClientAllocFree  allocate + deallocate through one blocking_client, from
//                               1, 2, 8 and 32 threads at once; items = pairs (two round
//                               trips), over all threads (real time).
//   BM_BlockingClientAllocFreeCafPolling  the same from 1 thread, with CAF's own idle
//                               polling (use_prompt_wakeups() not applied): its baseline.
//   BM_AsioClientAllocFree/N    N coroutines on one io_context, each awaiting
//                               allocate + deallocate 256 times; items = pairs.
//
// Each runs over its own runtime: one emulated host device of 256 MiB (as the actor
// benchmarks), the default engine settings, tag "default".

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <string>

#include "bench_sizes.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/scheduler.hpp"
#include "gpumem/client/asio_client.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/messages/register.hpp"

namespace {

namespace asio = boost::asio;
using gpumem::bench::bench_sizes;
using gpumem::MiB;

constexpr std::uint64_t asio_rounds = 256;  // pairs per coroutine and iteration

/// An actor system with a runtime over one 256 MiB host device.
struct client_setup {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<gpumem::actors::runtime> rt;
  std::string error;

  explicit client_setup(bool prompt_wakeups = true) {
    gpumem::messages::register_protocol(cfg);
    if (prompt_wakeups)
      gpumem::actors::use_prompt_wakeups(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    gpumem::actors::runtime_config config;
    config.backend = gpumem::actors::backend_kind::host;
    config.host.capacities = {256 * MiB};
    config.log_level = spdlog::level::warn;
    auto made = gpumem::actors::runtime::create(*sys, config);
    if (!made)
      error = made.error().to_string();
    else
      rt = std::move(made).value();
  }
  ~client_setup() {
    rt.reset();
    sys.reset();
  }
  gpumem::client::endpoint endpoint() { return gpumem::client::local_endpoint(*sys, *rt); }
};

// Shared by the threads of one run: made by thread 0 before the loop's start barrier,
// destroyed by it after the end barrier.
std::unique_ptr<client_setup> g_setup;
std::unique_ptr<gpumem::client::blocking_client> g_blocking;

void blocking_alloc_free(benchmark::State& state, bool prompt_wakeups) {
  if (state.thread_index() == 0) {
    g_setup = std::make_unique<client_setup>(prompt_wakeups);
    if (g_setup->rt)
      g_blocking = std::make_unique<gpumem::client::blocking_client>(g_setup->endpoint());
  }
  const auto& sizes = bench_sizes();
  std::size_t next = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    if (!g_blocking) {
      state.SkipWithError(g_setup->error.c_str());
      break;
    }
    auto region = g_blocking->allocate(sizes[next++ % sizes.size()]);
    if (!region) {
      state.SkipWithError(region.error().to_string().c_str());
      break;
    }
    if (auto freed = g_blocking->deallocate(*region); !freed) {
      state.SkipWithError(freed.error().to_string().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    g_blocking.reset();
    g_setup.reset();
  }
}

void BM_BlockingClientAllocFree(benchmark::State& state) { blocking_alloc_free(state, true); }
BENCHMARK(BM_BlockingClientAllocFree)->Threads(1)->Threads(2)->Threads(8)->Threads(32)->UseRealTime();

void BM_BlockingClientAllocFreeCafPolling(benchmark::State& state) {
  blocking_alloc_free(state, false);
}
BENCHMARK(BM_BlockingClientAllocFreeCafPolling)->Threads(1)->UseRealTime();

void BM_AsioClientAllocFree(benchmark::State& state) {
  client_setup setup;
  if (!setup.rt) {
    state.SkipWithError(setup.error.c_str());
    return;
  }
  asio::io_context io;
  gpumem::client::asio_client c{setup.endpoint(), io.get_executor()};
  const auto coroutines = static_cast<int>(state.range(0));
  const auto& sizes = bench_sizes();
  std::atomic<int> failures{0};
  std::string failure;
  for (auto _ : state) {
    for (int k = 0; k < coroutines; ++k)
      asio::co_spawn(
        io,
        [&, k]() -> asio::awaitable<void> {
          std::size_t next = static_cast<std::size_t>(k) * 97;
          for (std::uint64_t i = 0; i < asio_rounds; ++i) {
            auto region = co_await c.async_allocate({sizes[next++ % sizes.size()]},
                                                    asio::use_awaitable);
            if (!region) {
              failure = region.error().to_string();
              ++failures;
              co_return;
            }
            auto freed = co_await c.async_deallocate(*region, asio::use_awaitable);
            if (!freed) {
              failure = freed.error().to_string();
              ++failures;
              co_return;
            }
          }
        },
        asio::detached);
    io.run();
    io.restart();
    if (failures > 0) {
      state.SkipWithError(failure.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * coroutines * static_cast<std::int64_t>(asio_rounds));
}
BENCHMARK(BM_AsioClientAllocFree)->Arg(1)->Arg(64)->UseRealTime();

} // namespace
