// Engine benchmarks: the cost of one allocate plus one free with many blocks live,
// against RMM's linear-scan best fit run in the same binary on the same sequence; and
// a whole sleep (weights backed up to host) plus wake, against a plain memcpy.
//
// The engine runs on a host backend of its own, sized for the benchmark, so these
// numbers do not depend on --backend; with --backend=cuda it runs on the GPU instead.
// Every engine call is checked; a failure skips the benchmark with the engine's error.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <functional>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench_backend.hpp"
#include "ok_or_skip.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "linear_best_fit.hpp"

namespace {

namespace gc = gpumem::cuda;
namespace core = gpumem::core;
using gpumem::GiB;
using gpumem::KiB;
using gpumem::MiB;

/// The device an engine benchmark runs on: the GPU when gpumem_bench runs on CUDA,
/// otherwise a host backend of its own with one device of `capacity` bytes.
struct engine_device {
  std::unique_ptr<gc::host_backend> own;
  gc::device_backend* backend = nullptr;
  int device = 0;

  explicit engine_device(std::size_t capacity) {
    if (bench_backend().name() == "cuda") {
      backend = &bench_backend();
      device = bench_device;
      return;
    }
    gc::host_device_config one;
    one.capacity = capacity;
    gc::host_backend_config config;
    config.devices = {one};
    own = std::make_unique<gc::host_backend>(config);
    backend = own.get();
  }
};

/// An engine on `device`, or nullptr after skipping the benchmark.
std::unique_ptr<core::engine> make_engine(benchmark::State& state, engine_device& device) {
  core::engine_config config;
  config.device = device.device;
  auto created = core::engine::create(*device.backend, config);
  if (!ok_or_skip(state, created))
    return nullptr;
  return std::move(*created);
}

// --- allocate + free with N blocks live ---------------------------------------------

constexpr std::size_t small_min = 256;
constexpr std::size_t small_max = 16 * KiB;
constexpr std::uint64_t plan_seed = 20240607;
constexpr std::size_t timed_steps = std::size_t{1} << 16;  // the timed loop cycles through these

/// The same sequence for the engine and the baseline, drawn once with a fixed seed.
/// Pre-fill: allocate 2N blocks, then free a random half of them (highest index
/// first), leaving N live blocks with holes between them, as a running program has.
/// Each timed step allocates sizes[k] and frees the live block in slot victims[k],
/// whose place the new block takes: N blocks stay live throughout.
struct churn_plan {
  std::vector<std::size_t> prefill_sizes;     // 2N
  std::vector<std::size_t> prefill_frees;     // N indices into prefill_sizes, descending
  std::vector<std::size_t> sizes;             // timed_steps
  std::vector<std::uint32_t> victims;         // timed_steps, each < N

  std::size_t live() const { return prefill_sizes.size() - prefill_frees.size(); }
};

const churn_plan& plan_for(std::size_t live) {
  static std::vector<std::pair<std::size_t, std::unique_ptr<churn_plan>>> plans;
  for (const auto& [n, plan] : plans)
    if (n == live)
      return *plan;
  auto plan = std::make_unique<churn_plan>();
  std::mt19937_64 random(plan_seed + live);
  std::uniform_int_distribution<std::size_t> size(small_min, small_max);
  std::uniform_int_distribution<std::uint32_t> slot(0, static_cast<std::uint32_t>(live - 1));
  plan->prefill_sizes.resize(2 * live);
  for (auto& s : plan->prefill_sizes)
    s = size(random);
  std::vector<std::size_t> order(2 * live);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), random);
  plan->prefill_frees.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(live));
  std::sort(plan->prefill_frees.begin(), plan->prefill_frees.end(), std::greater<>());
  plan->sizes.resize(timed_steps);
  plan->victims.resize(timed_steps);
  for (std::size_t k = 0; k < timed_steps; ++k) {
    plan->sizes[k] = size(random);
    plan->victims[k] = slot(random);
  }
  plans.emplace_back(live, std::move(plan));
  return *plans.back().second;
}

/// Runs the pre-fill against `alloc(size) -> handle or nullopt` and
/// `release(handle, size)`, and returns the N live handles with their sizes.
template <class Handle, class Alloc, class Release>
bool prefill(benchmark::State& state, const churn_plan& plan, Alloc&& alloc, Release&& release,
             std::vector<Handle>& live, std::vector<std::size_t>& live_sizes) {
  std::vector<Handle> all;
  all.reserve(plan.prefill_sizes.size());
  for (const std::size_t size : plan.prefill_sizes) {
    auto h = alloc(size);
    if (!h)
      return false;
    all.push_back(*h);
  }
  std::vector<bool> freed(all.size(), false);
  for (const std::size_t i : plan.prefill_frees) {
    if (!release(all[i], plan.prefill_sizes[i]))
      return false;
    freed[i] = true;
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!freed[i]) {
      live.push_back(all[i]);
      live_sizes.push_back(plan.prefill_sizes[i]);
    }
  }
  if (live.size() != plan.live()) {
    state.SkipWithError("pre-fill left the wrong number of live blocks");
    return false;
  }
  return true;
}

void BM_EngineAllocFree(benchmark::State& state) {
  const auto& plan = plan_for(static_cast<std::size_t>(state.range(0)));
  // Twice the pre-fill's peak (2N blocks of 8 KiB on average) plus room for segments.
  engine_device device(4 * GiB);
  auto e = make_engine(state, device);
  if (!e)
    return;

  const std::string tag = "bench";
  auto alloc = [&](std::size_t size) -> std::optional<core::region_id> {
    auto r = e->allocate({.size = size, .tag = tag});
    if (!ok_or_skip(state, r))
      return std::nullopt;
    return r->id;
  };
  auto release = [&](core::region_id id, std::size_t) {
    return ok_or_skip(state, e->deallocate(id));
  };
  std::vector<core::region_id> live;
  std::vector<std::size_t> live_sizes;
  if (!prefill(state, plan, alloc, release, live, live_sizes))
    return;

  std::size_t k = 0;
  for (auto _ : state) {
    auto r = e->allocate({.size = plan.sizes[k], .tag = tag});
    if (!ok_or_skip(state, r))
      break;
    const std::uint32_t v = plan.victims[k];
    if (!ok_or_skip(state, e->deallocate(live[v])))
      break;
    live[v] = r->id;
    k = (k + 1) & (timed_steps - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["fragmentation"] = e->fragmentation(tag);
}

void BM_LinearBestFitAllocFree(benchmark::State& state) {
  const auto& plan = plan_for(static_cast<std::size_t>(state.range(0)));
  // Address space only: the baseline never touches the bytes it hands out.
  const std::size_t pool_bytes = 4 * GiB;
  const auto buffer = std::make_unique_for_overwrite<std::byte[]>(pool_bytes);
  gpumem::bench::linear_best_fit pool(buffer.get(), pool_bytes);

  auto alloc = [&](std::size_t size) -> std::optional<std::byte*> {
    std::byte* p = pool.allocate(size);
    if (p == nullptr) {
      state.SkipWithError("linear best fit: out of memory");
      return std::nullopt;
    }
    return p;
  };
  auto release = [&](std::byte* p, std::size_t size) {
    pool.deallocate(p, size);
    return true;
  };
  std::vector<std::byte*> live;
  std::vector<std::size_t> live_sizes;
  if (!prefill(state, plan, alloc, release, live, live_sizes))
    return;

  std::size_t k = 0;
  for (auto _ : state) {
    std::byte* p = pool.allocate(plan.sizes[k]);
    if (p == nullptr) {
      state.SkipWithError("linear best fit: out of memory");
      break;
    }
    const std::uint32_t v = plan.victims[k];
    pool.deallocate(live[v], live_sizes[v]);
    live[v] = p;
    live_sizes[v] = plan.sizes[k];
    k = (k + 1) & (timed_steps - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["free_blocks"] = static_cast<double>(pool.free_blocks());
}

// --- sleep + wake ------------------------------------------------------------------

/// Weights regions of this size fill the benchmark's bytes (one large chunk each).
constexpr std::size_t weights_region = 32 * MiB;

void BM_EngineSleepWake(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  engine_device device(2 * bytes + 256 * MiB);
  auto e = make_engine(state, device);
  if (!e)
    return;
  const std::size_t region = std::min(bytes, weights_region);
  for (std::size_t filled = 0; filled < bytes; filled += region)
    if (!ok_or_skip(state, e->allocate({.size = region, .tag = "weights"})))
      return;

  const auto policy = core::sleep_policy::backing_up({"weights"});
  // One cycle untimed: the first sleep allocates the pinned host slabs, which later
  // sleeps reuse; the loop measures the steady state.
  if (!ok_or_skip(state, e->sleep(policy)) || !ok_or_skip(state, e->wake_up()))
    return;
  double sleep_seconds = 0;
  double wake_seconds = 0;
  double copy_seconds = 0;
  for (auto _ : state) {
    auto slept = e->sleep(policy);
    if (!ok_or_skip(state, slept))
      break;
    auto woken = e->wake_up();
    if (!ok_or_skip(state, woken))
      break;
    if (slept->bytes_backed_up != bytes || woken->bytes_restored != bytes) {
      const std::string what = "backed up " + gpumem::format_bytes(slept->bytes_backed_up) +
                               " and restored " + gpumem::format_bytes(woken->bytes_restored) +
                               " of " + gpumem::format_bytes(bytes);
      state.SkipWithError(what.c_str());
      break;
    }
    sleep_seconds += slept->seconds;
    wake_seconds += woken->seconds;
    copy_seconds += slept->copy_seconds + woken->copy_seconds;
  }
  // Out and back: each iteration copies the bytes twice, as two memcpys would.
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(bytes));
  state.counters["sleep_ms"] =
    benchmark::Counter(sleep_seconds * 1e3, benchmark::Counter::kAvgIterations);
  state.counters["wake_ms"] =
    benchmark::Counter(wake_seconds * 1e3, benchmark::Counter::kAvgIterations);
  // The copies alone, without releasing and recreating the physical memory.
  state.counters["copy_bytes_per_second"] = benchmark::Counter(
    copy_seconds > 0 ? static_cast<double>(state.iterations()) * 2 * static_cast<double>(bytes) / copy_seconds : 0);
}

// Real time throughout, as for the device benchmarks: sleep and wake wait on copy
// threads, and the ratios compare against BM_Memcpy's real time.
BENCHMARK(BM_EngineAllocFree)->Arg(1000)->Arg(10000)->Arg(100000)
  ->UseRealTime()->Unit(benchmark::kNanosecond);
BENCHMARK(BM_LinearBestFitAllocFree)->Arg(1000)->Arg(10000)->Arg(100000)
  ->UseRealTime()->Unit(benchmark::kNanosecond);
BENCHMARK(BM_EngineSleepWake)->Arg(64 * MiB)->Arg(256 * MiB)->Arg(GiB)
  ->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace
