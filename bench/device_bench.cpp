// Device layer benchmarks: copy bandwidth to and from pinned host memory against a
// plain memcpy baseline, and the cost of creating and dropping mapped chunks.
//
// Every backend call is checked; a failure skips the benchmark with the backend's
// error instead of aborting the whole run.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "bench_backend.hpp"
#include "ok_or_skip.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace {

namespace gc = gpumem::cuda;
using gpumem::GiB;
using gpumem::MiB;

/// Waits for a started copy, or passes on the error that kept it from starting.
gc::status wait_for(gc::result<gc::copy_handle> copy) {
  if (!copy)
    return copy.error();
  return (*copy)->wait();
}

gc::result<std::size_t> granularity(gc::device_backend& backend) {
  auto props = backend.properties(bench_device);
  if (!props)
    return props.error();
  return props->granularity_minimum;
}

/// A reservation held for one benchmark; freed on scope exit.
class reservation {
public:
  explicit reservation(gc::device_backend& backend) : backend_(backend) {}
  ~reservation() {
    if (base_ != 0)
      (void)backend_.free_reservation(base_, size_);
  }
  reservation(const reservation&) = delete;
  reservation& operator=(const reservation&) = delete;

  gc::status open(std::size_t size) {
    auto base = backend_.reserve(bench_device, size);
    if (!base)
      return base.error();
    base_ = *base;
    size_ = size;
    return {};
  }
  gc::device_ptr base() const { return base_; }

private:
  gc::device_backend& backend_;
  gc::device_ptr base_ = 0;
  std::size_t size_ = 0;
};

/// One chunk mapped read-write at a fixed address. close() undoes open(); the
/// destructor closes too, so an early return never leaks a chunk or a mapping.
class mapped_chunk {
public:
  explicit mapped_chunk(gc::device_backend& backend) : backend_(backend) {}
  ~mapped_chunk() { (void)close(); }
  mapped_chunk(const mapped_chunk&) = delete;
  mapped_chunk& operator=(const mapped_chunk&) = delete;

  gc::status open(gc::device_ptr address, std::size_t size) {
    auto chunk = backend_.create_chunk(bench_device, size);
    if (!chunk)
      return chunk.error();
    chunk_ = *chunk;
    address_ = address;
    size_ = size;
    if (auto mapped = backend_.map(address, size, *chunk_); !mapped)
      return mapped;
    mapped_ = true;
    return backend_.set_access(bench_device, address, size);
  }

  gc::status close() {
    gc::status outcome;
    if (mapped_) {
      mapped_ = false;
      outcome = backend_.unmap(address_, size_);
    }
    if (chunk_) {
      auto released = backend_.release_chunk(*chunk_);
      chunk_.reset();
      if (outcome.ok())
        outcome = released;
    }
    return outcome;
  }

private:
  gc::device_backend& backend_;
  std::optional<gc::chunk_handle> chunk_;
  gc::device_ptr address_ = 0;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

/// Device memory of at least `bytes` (rounded up to the granularity) plus a pinned
/// host buffer of `bytes`, both filled once: the fixture of the copy benchmarks.
struct copy_setup {
  explicit copy_setup(gc::device_backend& b) : backend(b), range(b), memory(b) {}

  gc::status open(std::size_t bytes) {
    auto gran = granularity(backend);
    if (!gran)
      return gran.error();
    const std::size_t device_bytes = gc::round_up(bytes, *gran);
    if (auto s = range.open(device_bytes); !s)
      return s;
    if (auto s = memory.open(range.base(), device_bytes); !s)
      return s;
    auto buffer = backend.allocate_pinned(bytes);
    if (!buffer)
      return buffer.error();
    host = std::move(*buffer);
    // Touch every page once so neither side pays first-touch costs in the loop.
    std::memset(host.data(), 0x5a, bytes);
    return wait_for(backend.copy_to_device_async(bench_device, range.base(), host.data(), bytes));
  }

  gc::device_backend& backend;
  // Destroyed in reverse: the chunk is unmapped before its reservation is freed.
  reservation range;
  mapped_chunk memory;
  gc::pinned_buffer host;
};

void BM_Memcpy(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  auto src = std::make_unique_for_overwrite<std::byte[]>(bytes);
  auto dst = std::make_unique_for_overwrite<std::byte[]>(bytes);
  std::memset(src.get(), 0x5a, bytes);
  std::memset(dst.get(), 0, bytes);
  for (auto _ : state) {
    std::memcpy(dst.get(), src.get(), bytes);
    benchmark::DoNotOptimize(dst.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

enum class direction { to_host, to_device };

/// One copy of range(0) bytes per iteration through the backend's asynchronous copies.
void copy_through_backend(benchmark::State& state, direction way) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  auto& backend = bench_backend();
  copy_setup setup(backend);
  if (!ok_or_skip(state, setup.open(bytes)))
    return;
  for (auto _ : state) {
    auto copied = wait_for(
      way == direction::to_host
        ? backend.copy_to_host_async(bench_device, setup.host.data(), setup.range.base(), bytes)
        : backend.copy_to_device_async(bench_device, setup.range.base(), setup.host.data(),
                                       bytes));
    if (!ok_or_skip(state, copied))
      return;
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}

void BM_HostBackup(benchmark::State& state) { copy_through_backend(state, direction::to_host); }
void BM_HostRestore(benchmark::State& state) { copy_through_backend(state, direction::to_device); }

using bench_clock = std::chrono::steady_clock;

/// Microseconds per MiB of chunk, averaged over iterations: comparable across chunk
/// sizes, which is what choosing a chunk size needs. `timed` excludes paused work.
void set_per_mib(benchmark::State& state, bench_clock::duration timed, std::size_t bytes) {
  const double us = std::chrono::duration<double, std::micro>(timed).count();
  const double mib = static_cast<double>(bytes) / static_cast<double>(MiB);
  state.counters["us_per_MiB"] = benchmark::Counter(us / mib, benchmark::Counter::kAvgIterations);
}

/// The chunk size under test, a multiple of the device's granularity.
std::optional<std::size_t> chunk_bytes(benchmark::State& state, gc::device_backend& backend) {
  auto gran = granularity(backend);
  if (!ok_or_skip(state, gran))
    return std::nullopt;
  return gc::round_up(static_cast<std::size_t>(state.range(0)), *gran);
}

void BM_ChunkCreateMap(benchmark::State& state) {
  auto& backend = bench_backend();
  const auto bytes = chunk_bytes(state, backend);
  if (!bytes)
    return;
  reservation range(backend);
  if (!ok_or_skip(state, range.open(*bytes)))
    return;
  bench_clock::duration timed{};
  for (auto _ : state) {
    mapped_chunk chunk(backend);
    const auto start = bench_clock::now();
    if (!ok_or_skip(state, chunk.open(range.base(), *bytes)))
      return;
    timed += bench_clock::now() - start;
    state.PauseTiming();
    auto closed = chunk.close();
    state.ResumeTiming();
    if (!ok_or_skip(state, closed))
      return;
  }
  set_per_mib(state, timed, *bytes);
}

void BM_ChunkUnmapRelease(benchmark::State& state) {
  auto& backend = bench_backend();
  const auto bytes = chunk_bytes(state, backend);
  if (!bytes)
    return;
  reservation range(backend);
  if (!ok_or_skip(state, range.open(*bytes)))
    return;
  bench_clock::duration timed{};
  for (auto _ : state) {
    state.PauseTiming();
    mapped_chunk chunk(backend);
    if (!ok_or_skip(state, chunk.open(range.base(), *bytes)))
      return;
    state.ResumeTiming();
    const auto start = bench_clock::now();
    auto closed = chunk.close();
    timed += bench_clock::now() - start;
    if (!ok_or_skip(state, closed))
      return;
  }
  set_per_mib(state, timed, *bytes);
}

constexpr std::int64_t copy_min = MiB;
constexpr std::int64_t copy_max = GiB;

/// Chunk sizes from CUDA's minimum granularity (2 MiB) to 1 GiB, by factors of 4.
void chunk_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t bytes = 2 * MiB; bytes < static_cast<std::int64_t>(GiB); bytes *= 4)
    b->Arg(bytes);
  b->Arg(GiB);
}

// Real time throughout: the copies and driver calls wait on other threads and on
// the device, which CPU time would not count. Memcpy too, so the ratios compare
// like with like.
BENCHMARK(BM_Memcpy)->RangeMultiplier(4)->Range(copy_min, copy_max)
  ->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostBackup)->RangeMultiplier(4)->Range(copy_min, copy_max)
  ->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HostRestore)->RangeMultiplier(4)->Range(copy_min, copy_max)
  ->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChunkCreateMap)->Apply(chunk_sizes)
  ->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChunkUnmapRelease)->Apply(chunk_sizes)
  ->UseRealTime()->Unit(benchmark::kMicrosecond);

} // namespace
