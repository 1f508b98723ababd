// Actor benchmarks: what the actor path (client -> balancer -> device allocator ->
// engine, and back) costs over calling the engine directly.
//
//   BM_ActorAllocFree        one allocate, then its deallocate, through the balancer;
//                            items = allocate + free pairs (two round trips). The
//                            client is local and sends with caf::infinite: the
//                            balancer answers every request within its own
//                            request_timeout, so it need not arm CAF's clock.
//   BM_ActorAllocFreeTimed   the same from a client that gives each request a CAF
//                            timeout (what a remote client must do): the difference is
//                            CAF 0.17's per-request clock entry.
//   BM_EngineAllocFreeDirect the same sizes on a core::engine called directly (the
//                            in-run baseline); items = pairs.
//   BM_EngineBatchDirect/64  the batch's work on the engine directly: 64 allocations,
//                            then their 64 frees; items = 64 per iteration (and /512).
//   BM_ActorBatchAlloc/64    16 rounds of: one batch_allocate of 64 requests through the balancer,
//                            then one batch_deallocate of the 64 regions; items = 64
//                            per iteration (an allocation and its free, like the
//                            baseline's pairs). /512 beside it separates the fixed
//                            cost of a batch's round trips from the cost per request.
//
// The actor benchmarks are timed by an event-based driver actor inside the actor
// system: it runs the round trips back to back, measures them with steady_clock, and
// answers the elapsed time, which becomes the iteration's manual time
// (SetIterationTime). The blocking scoped_actor request that starts each iteration
// (tens of microseconds in CAF 0.17) is therefore not counted.
//
// Everything runs on a host backend of its own: one emulated device of 256 MiB, the
// runtime's default engine settings; the sizes are one fixed random sequence of
// 256 B .. 16 KiB, tag "default", shared by all of them.

#include <benchmark/benchmark.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "gpumem/messages/all.hpp"
#include "bench_sizes.hpp"
#include "ok_or_skip.hpp"

namespace {

using gpumem::bench::bench_sizes;
namespace gm = gpumem::messages;
namespace core = gpumem::core;
using gpumem::KiB;
using gpumem::MiB;

using run_atom = caf::atom_constant<caf::atom("run")>;
using batch_atom = caf::atom_constant<caf::atom("batch")>;

constexpr std::size_t device_capacity = 256 * MiB;
constexpr std::uint64_t rounds_per_iteration = 256;  // BM_ActorAllocFree
constexpr std::uint64_t batches_per_iteration = 16;  // BM_ActorBatchAlloc
/// What a client that arms CAF's clock for each request waits (BM_ActorAllocFreeTimed).
constexpr auto client_timeout = std::chrono::seconds(30);


// -- the driver actor ----------------------------------------------------------------

struct driver_state {
  gm::balancer_actor balancer;
  /// infinite: a local client relying on the balancer's own deadlines.
  caf::duration timeout{caf::infinite};
  std::size_t next_size = 0;
  std::uint64_t rounds_left = 0;
  std::uint64_t batch = 0;
  std::chrono::steady_clock::time_point start;
  caf::response_promise promise;

  gm::allocation_request next_request() {
    const auto& sizes = bench_sizes();
    gm::allocation_request request;
    request.size = sizes[next_size++ % sizes.size()];
    return request;
  }
  void finish() {
    const auto elapsed = std::chrono::steady_clock::now() - start;
    promise.deliver(static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()));
  }
};

using driver_ptr = std::shared_ptr<driver_state>;

void alloc_free_round(caf::event_based_actor* self, driver_ptr st) {
  if (st->rounds_left == 0) {
    st->finish();
    return;
  }
  --st->rounds_left;
  self->request(st->balancer, st->timeout, gm::allocate_atom::value,
                st->next_request())
    .then(
      [self, st](gm::region_handle& handle) {
        self->request(st->balancer, st->timeout,
                      gm::deallocate_atom::value, handle)
          .then([self, st](gm::ok_atom) { alloc_free_round(self, st); },
                [st](caf::error& e) { st->promise.deliver(std::move(e)); });
      },
      [st](caf::error& e) { st->promise.deliver(std::move(e)); });
}

void batch_round(caf::event_based_actor* self, driver_ptr st) {
  if (st->rounds_left == 0) {
    st->finish();
    return;
  }
  --st->rounds_left;
  gm::batch_allocation_request batch;
  for (std::uint64_t i = 0; i < st->batch; ++i)
    batch.requests.push_back(st->next_request());
  self->request(st->balancer, st->timeout, gm::batch_allocate_atom::value,
                std::move(batch))
    .then(
      [self, st](gm::batch_allocation_response& response) {
        self->request(st->balancer, st->timeout,
                      gm::batch_deallocate_atom::value,
                      gm::batch_deallocation_request{std::move(response.regions)})
          .then([self, st](gm::ok_atom) { batch_round(self, st); },
                [st](caf::error& e) { st->promise.deliver(std::move(e)); });
      },
      [st](caf::error& e) { st->promise.deliver(std::move(e)); });
}

/// Answers (run, rounds) and (batch, rounds, size) with the nanoseconds they took.
caf::behavior driver(caf::event_based_actor* self, gm::balancer_actor balancer) {
  auto st = std::make_shared<driver_state>();
  st->balancer = std::move(balancer);
  return {
    [self, st](run_atom, std::uint64_t rounds, bool timed) {
      st->promise = self->make_response_promise();
      st->timeout = timed ? caf::duration{client_timeout} : caf::duration{caf::infinite};
      st->rounds_left = rounds;
      st->start = std::chrono::steady_clock::now();
      alloc_free_round(self, st);
      return st->promise;
    },
    [self, st](batch_atom, std::uint64_t rounds, std::uint64_t size) {
      st->promise = self->make_response_promise();
      st->rounds_left = rounds;
      st->batch = size;
      st->timeout = caf::duration{caf::infinite};
      st->start = std::chrono::steady_clock::now();
      batch_round(self, st);
      return st->promise;
    },
  };
}

/// An actor system with a runtime over one 256 MiB host device, and a driver.
struct actor_setup {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<gpumem::actors::runtime> rt;
  caf::actor drv;
  std::string error;

  actor_setup() {
    gm::register_protocol(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    gpumem::actors::runtime_config config;
    config.backend = gpumem::actors::backend_kind::host;
    config.host.capacities = {device_capacity};
    config.log_level = spdlog::level::warn;  // the actors log every start and stop
    auto made = gpumem::actors::runtime::create(*sys, config);
    if (!made) {
      error = made.error().to_string();
      return;
    }
    rt = std::move(made).value();
    drv = sys->spawn(driver, rt->balancer());
  }
  ~actor_setup() {
    if (drv) {
      caf::scoped_actor self{*sys};
      self->send_exit(drv, caf::exit_reason::user_shutdown);
      self->wait_for(drv);
    }
    drv = nullptr;
    rt.reset();
    sys.reset();
  }

  /// Runs one request on the driver; the nanoseconds it took, or -1 with `error` set.
  template <class... Ts>
  std::int64_t time(Ts&&... xs) {
    caf::scoped_actor self{*sys};
    std::int64_t ns = -1;
    self->request(drv, caf::duration{std::chrono::seconds(60)}, std::forward<Ts>(xs)...)
      .receive([&](std::int64_t x) { ns = x; },
               [&](caf::error& e) { error = sys->render(e); });
    return ns;
  }
};

void actor_alloc_free(benchmark::State& state, bool timed) {
  actor_setup setup;
  if (!setup.rt) {
    state.SkipWithError(setup.error.c_str());
    return;
  }
  for (auto _ : state) {
    const auto ns = setup.time(run_atom::value, rounds_per_iteration, timed);
    if (ns < 0) {
      state.SkipWithError(setup.error.c_str());
      break;
    }
    state.SetIterationTime(static_cast<double>(ns) * 1e-9);
  }
  state.SetItemsProcessed(state.iterations() *
                          static_cast<std::int64_t>(rounds_per_iteration));
}

void BM_ActorAllocFree(benchmark::State& state) {
  actor_alloc_free(state, false);
}
BENCHMARK(BM_ActorAllocFree)->UseManualTime();

void BM_ActorAllocFreeTimed(benchmark::State& state) {
  actor_alloc_free(state, true);
}
BENCHMARK(BM_ActorAllocFreeTimed)->UseManualTime();

void BM_ActorBatchAlloc(benchmark::State& state) {
  const auto batch = static_cast<std::uint64_t>(state.range(0));
  actor_setup setup;
  if (!setup.rt) {
    state.SkipWithError(setup.error.c_str());
    return;
  }
  for (auto _ : state) {
    const auto ns = setup.time(batch_atom::value, batches_per_iteration, batch);
    if (ns < 0) {
      state.SkipWithError(setup.error.c_str());
      break;
    }
    state.SetIterationTime(static_cast<double>(ns) * 1e-9);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0) *
                          static_cast<std::int64_t>(batches_per_iteration));
}
BENCHMARK(BM_ActorBatchAlloc)->Arg(64)->Arg(512)->UseManualTime();

/// An engine on a host backend of its own, set up as the runtime's first device.
struct direct_engine {
  gpumem::cuda::host_backend backend{one_device()};
  core::engine_result<std::unique_ptr<core::engine>> made =
    core::engine::create(backend, gpumem::actors::runtime_config{}.engine_config_for(0));

  static gpumem::cuda::host_backend_config one_device() {
    gpumem::cuda::host_device_config device;
    device.capacity = device_capacity;
    gpumem::cuda::host_backend_config host;
    host.devices = {device};
    return host;
  }
};

void BM_EngineAllocFreeDirect(benchmark::State& state) {
  direct_engine direct;
  if (!ok_or_skip(state, direct.made))
    return;
  auto& engine = *direct.made.value();
  const auto& sizes = bench_sizes();
  std::size_t next = 0;
  core::allocation_request request;
  for (auto _ : state) {
    request.size = sizes[next++ % sizes.size()];
    auto region = engine.allocate(request);
    if (!ok_or_skip(state, region) || !ok_or_skip(state, engine.deallocate(region->id)))
      break;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EngineAllocFreeDirect)->UseRealTime();

/// The batch's work done directly: n allocations, then their n frees; items = n.
void BM_EngineBatchDirect(benchmark::State& state) {
  direct_engine direct;
  if (!ok_or_skip(state, direct.made))
    return;
  auto& engine = *direct.made.value();
  const auto& sizes = bench_sizes();
  std::size_t next = 0;
  core::allocation_request request;
  std::vector<core::region_id> ids(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    for (auto& id : ids) {
      request.size = sizes[next++ % sizes.size()];
      auto region = engine.allocate(request);
      if (!ok_or_skip(state, region))
        return;
      id = region->id;
    }
    for (auto id : ids)
      if (!ok_or_skip(state, engine.deallocate(id)))
        return;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EngineBatchDirect)->Arg(64)->Arg(512)->UseRealTime();

} // namespace
