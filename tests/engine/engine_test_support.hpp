#pragma once
// What the engine tests share: a backend with one small device (host, or CUDA on the
// driver stand-in), an engine made on it, byte patterns written and checked through a region's pointer, and checks of
// the invariants that must hold after every operation (statistics against the
// regions and the backend, snapshots against the regions).

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/backend_factory.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "support/wait.hpp"

namespace gpumem::engine_test {

using core::allocation_request;
using core::engine;
using core::engine_config;
using core::engine_errc;
using core::engine_state;
using core::region_id;
using core::region_info;
using core::region_state;
using core::sleep_policy;
using core::strategy;
using cuda::device_ptr;

constexpr std::size_t device_capacity = 256 * MiB;
constexpr std::size_t device_granularity = 2 * MiB;
constexpr std::size_t default_alignment = 256;

inline const std::string weights = "weights";
inline const std::string kv_cache = "kv_cache";
inline const std::string activations = "activations";

/// One emulated device of `capacity` bytes with 2 MiB granularity.
inline cuda::host_backend_config one_device(std::size_t capacity = device_capacity,
                                            std::size_t granularity = device_granularity) {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{capacity, granularity, granularity}};
  return config;
}

/// Makes an engine on `backend` or fails the test with the engine's error.
inline std::unique_ptr<engine> make_engine(cuda::device_backend& backend,
                                           engine_config config = {}) {
  auto made = engine::create(backend, config);
  INFO((made.ok() ? std::string("ok") : made.error().to_string()));
  REQUIRE(made.ok());
  return std::move(made).value();
}

/// The backend the engine tests run on: the host backend with one emulated device of
/// `capacity`, or, with GPUMEM_ENGINE_TEST_BACKEND=cuda, the CUDA backend (ctest runs
/// the sleep and wake tests so on the driver stand-in, whose devices
/// GPUMEM_STANDIN_DEVICE_MIB sizes to device_capacity).
inline std::unique_ptr<cuda::device_backend> make_test_backend(std::size_t capacity) {
  const char* chosen = std::getenv("GPUMEM_ENGINE_TEST_BACKEND");
  if (chosen == nullptr || std::string(chosen) == "host")
    return std::make_unique<cuda::host_backend>(one_device(capacity));
  auto choice = cuda::make_backend(chosen);
  INFO("GPUMEM_ENGINE_TEST_BACKEND=" << chosen << ": "
                                     << (choice.ok() ? choice->reason : choice.error().to_string()));
  REQUIRE(choice.ok());
  auto total = choice->backend->memory(0);
  REQUIRE(total.ok());
  INFO("the tests expect device 0 to hold " << capacity << " bytes");
  REQUIRE(total->total == capacity);
  return std::move(choice->backend);
}

/// A backend and an engine on its device 0. The engine goes first.
struct fixture {
  std::unique_ptr<cuda::device_backend> owned;
  cuda::device_backend& backend;
  std::unique_ptr<engine> eng;

  explicit fixture(engine_config config = {}, std::size_t capacity = device_capacity)
    : owned(make_test_backend(capacity)), backend(*owned), eng(make_engine(backend, config)) {
    ++live();
  }
  ~fixture() { --live(); }
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  /// Whether the device's figures are this engine's alone: always on the host backend
  /// (one per fixture); on CUDA, fixtures alive at once share the driver's device 0.
  bool device_is_own() const { return on_host() || live() == 1; }
  static int& live() {
    static int fixtures = 0;
    return fixtures;
  }

  engine& operator*() { return *eng; }
  engine* operator->() { return eng.get(); }

  bool on_host() const { return backend.name() == "host"; }
  /// The host backend, for what only it offers (fault injection, usage counts).
  cuda::host_backend& host() {
    REQUIRE(on_host());
    return static_cast<cuda::host_backend&>(backend);
  }

  /// What the backend holds. Only the host backend counts chunks and mappings; on
  /// another, they read 0 and physical_bytes is the device's total minus free.
  cuda::host_backend::usage usage() {
    if (on_host())
      return host().current_usage();
    cuda::host_backend::usage u;
    u.physical_bytes = device_total() - device_free();
    return u;
  }

  std::size_t device_free() {
    auto info = backend.memory(0);
    REQUIRE(info.ok());
    return info->free;
  }
  std::size_t device_total() {
    auto info = backend.memory(0);
    REQUIRE(info.ok());
    return info->total;
  }
};

inline std::string describe(const core::engine_error& error) { return error.to_string(); }

template <class T>
std::string outcome(const core::engine_result<T>& r) {
  return r.ok() ? std::string("ok") : r.error().to_string();
}

/// Allocates or fails the test with the engine's error.
inline region_info must_allocate(engine& e, std::size_t size, const std::string& tag = "default",
                                 strategy how = strategy::pooled, std::size_t alignment = 0) {
  auto r = e.allocate({.size = size, .tag = tag, .how = how, .alignment = alignment});
  INFO("allocate(" << size << ", " << tag << ", " << core::to_string(how) << ", align "
                   << alignment << "): " << outcome(r));
  REQUIRE(r.ok());
  return *r;
}

inline void must_free(engine& e, region_id id) {
  auto r = e.deallocate(id);
  INFO("deallocate(" << id << "): " << outcome(r));
  REQUIRE(r.ok());
}

/// The error code of a failed result, or nothing when it succeeded.
template <class T>
std::optional<engine_errc> error_of(const core::engine_result<T>& r) {
  if (r.ok())
    return std::nullopt;
  return r.error().code();
}

// --- byte patterns ---------------------------------------------------------------

static_assert(std::endian::native == std::endian::little, "patterns assume little endian");

inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The pattern is a sequence of 64-bit words, each a function of (seed, index), so
/// any byte can be checked on its own.
inline std::uint64_t pattern_word(std::uint64_t seed, std::size_t index) {
  return mix64(seed * 0xD6E8FEB86659FD93ull ^ static_cast<std::uint64_t>(index));
}

inline std::byte pattern_byte(std::uint64_t seed, std::size_t offset) {
  return static_cast<std::byte>(pattern_word(seed, offset / 8) >> (8 * (offset % 8)));
}

inline std::byte* bytes_of(device_ptr address) { return reinterpret_cast<std::byte*>(address); }

/// Writes the pattern over the first `size` bytes at `address`.
inline void fill_pattern(device_ptr address, std::size_t size, std::uint64_t seed) {
  auto* p = bytes_of(address);
  std::size_t words = size / 8;
  for (std::size_t i = 0; i < words; ++i) {
    auto w = pattern_word(seed, i);
    std::memcpy(p + i * 8, &w, 8);
  }
  for (std::size_t j = words * 8; j < size; ++j)
    p[j] = pattern_byte(seed, j);
}

/// The first offset whose byte differs from the pattern, if any.
inline std::optional<std::size_t> pattern_mismatch(device_ptr address, std::size_t size,
                                                   std::uint64_t seed) {
  const auto* p = bytes_of(address);
  std::size_t words = size / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w;
    std::memcpy(&w, p + i * 8, 8);
    if (w != pattern_word(seed, i)) {
      for (std::size_t j = i * 8; j < i * 8 + 8; ++j)
        if (p[j] != pattern_byte(seed, j))
          return j;
    }
  }
  for (std::size_t j = words * 8; j < size; ++j)
    if (p[j] != pattern_byte(seed, j))
      return j;
  return std::nullopt;
}

/// A cheap check: the first and last 64 bytes and a few in between.
inline std::optional<std::size_t> pattern_sample_mismatch(device_ptr address, std::size_t size,
                                                          std::uint64_t seed) {
  const auto* p = bytes_of(address);
  auto check = [&](std::size_t j) { return p[j] != pattern_byte(seed, j); };
  for (std::size_t j = 0; j < std::min<std::size_t>(size, 64); ++j)
    if (check(j))
      return j;
  for (std::size_t j = size > 64 ? size - 64 : 0; j < size; ++j)
    if (check(j))
      return j;
  for (std::size_t k = 1; k < 8 && size > 0; ++k) {
    auto j = size * k / 8;
    if (check(j))
      return j;
  }
  return std::nullopt;
}

/// The pattern over a region's requested bytes (what a backup must preserve).
inline void fill_region(const region_info& r, std::uint64_t seed) {
  fill_pattern(r.address, r.requested, seed);
}

inline std::optional<std::size_t> region_mismatch(const region_info& r, std::uint64_t seed) {
  return pattern_mismatch(r.address, r.requested, seed);
}

#define CHECK_REGION_PATTERN(region, seed)                                                       \
  do {                                                                                           \
    auto mismatch_ = ::gpumem::engine_test::region_mismatch((region), (seed));                   \
    INFO("region " << (region).id << " (" << (region).tag << ", " << (region).requested          \
                   << " B) differs from its pattern at offset "                                  \
                   << (mismatch_ ? std::to_string(*mismatch_) : std::string("-")));             \
    CHECK_FALSE(mismatch_.has_value());                                                          \
  } while (false)

// --- invariants -----------------------------------------------------------------

inline std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines)
    out += line + "\n";
  return out;
}

/// Every way the statistics disagree with the engine's regions, its physical bytes
/// and (when given) the backend's figures; empty when they agree.
inline std::vector<std::string> statistics_violations(const engine& e,
                                                      cuda::device_backend* backend = nullptr) {
  std::vector<std::string> out;
  auto fail = [&](const std::string& what, std::int64_t actual, std::int64_t expected) {
    out.push_back(what + ": " + std::to_string(actual) + ", expected "
                  + std::to_string(expected));
  };
  const auto& st = e.statistics();
  auto regions = e.regions();

  struct sums {
    std::int64_t allocated = 0, requested = 0, active = 0;
  };
  sums total;
  std::map<std::string, sums> per_tag;
  for (const auto& r : regions) {
    auto& t = per_tag[e.tag_name(r.tag)];
    for (auto* s : {&total, &t}) {
      s->allocated += static_cast<std::int64_t>(r.size);
      s->requested += static_cast<std::int64_t>(r.requested);
      if (r.state == region_state::resident)
        s->active += static_cast<std::int64_t>(r.size);
    }
  }

  auto check_grid_against = [&](const std::string& name, const core::stat_grid& g,
                                const sums& s) {
    if (g.allocated.current != s.allocated)
      fail(name + " allocated.current (sum of live region sizes)", g.allocated.current,
           s.allocated);
    if (g.requested.current != s.requested)
      fail(name + " requested.current (sum of live requested sizes)", g.requested.current,
           s.requested);
    if (g.active.current != s.active)
      fail(name + " active.current (sum of resident region sizes)", g.active.current, s.active);
  };
  auto check_stat = [&](const std::string& name, const core::stat& s) {
    if (s.current < 0)
      fail(name + ".current is negative", s.current, 0);
    if (s.peak < s.current)
      fail(name + ".peak < current", s.peak, s.current);
    if (s.allocated - s.freed != s.current)
      fail(name + ".allocated - freed != current", s.allocated - s.freed, s.current);
  };
  auto check_grid = [&](const std::string& name, const core::stat_grid& g) {
    check_stat(name + " allocated", g.allocated);
    check_stat(name + " requested", g.requested);
    check_stat(name + " active", g.active);
    check_stat(name + " reserved", g.reserved);
    check_stat(name + " cached", g.cached);
    if (g.cached.current > g.reserved.current)
      fail(name + " cached.current > reserved.current", g.cached.current, g.reserved.current);
    if (g.active.current > g.allocated.current)
      fail(name + " active.current > allocated.current", g.active.current, g.allocated.current);
    if (g.requested.current > g.allocated.current)
      fail(name + " requested.current > allocated.current", g.requested.current,
           g.allocated.current);
    if (g.frees > g.allocations)
      fail(name + " frees > allocations", static_cast<std::int64_t>(g.frees),
           static_cast<std::int64_t>(g.allocations));
  };

  check_grid("total", st.total);
  check_grid_against("total", st.total, total);
  for (const auto& [tag, s] : per_tag) {
    auto it = st.tags.find(tag);
    if (it == st.tags.end()) {
      out.push_back("statistics().tags has no entry for live tag " + tag);
      continue;
    }
  }
  core::stat_grid summed;
  for (const auto& [tag, g] : st.tags) {
    check_grid("tag " + tag, g);
    auto it = per_tag.find(tag);
    check_grid_against("tag " + tag, g, it == per_tag.end() ? sums{} : it->second);
    summed.allocated.current += g.allocated.current;
    summed.requested.current += g.requested.current;
    summed.active.current += g.active.current;
    summed.reserved.current += g.reserved.current;
    summed.cached.current += g.cached.current;
    summed.allocations += g.allocations;
    summed.frees += g.frees;
    double expected = g.reserved.current <= 0
                        ? 0.0
                        : 1.0 - static_cast<double>(g.active.current)
                                  / static_cast<double>(g.reserved.current);
    double actual = e.fragmentation(tag);
    if (std::abs(actual - expected) > 1e-9)
      out.push_back("fragmentation(" + tag + ") = " + std::to_string(actual) + ", expected "
                    + std::to_string(expected));
  }
  if (summed.allocated.current != st.total.allocated.current)
    fail("sum over tags of allocated.current", summed.allocated.current,
         st.total.allocated.current);
  if (summed.requested.current != st.total.requested.current)
    fail("sum over tags of requested.current", summed.requested.current,
         st.total.requested.current);
  if (summed.active.current != st.total.active.current)
    fail("sum over tags of active.current", summed.active.current, st.total.active.current);
  if (summed.reserved.current != st.total.reserved.current)
    fail("sum over tags of reserved.current", summed.reserved.current, st.total.reserved.current);
  if (summed.cached.current != st.total.cached.current)
    fail("sum over tags of cached.current", summed.cached.current, st.total.cached.current);
  if (summed.allocations != st.total.allocations)
    fail("sum over tags of allocations", static_cast<std::int64_t>(summed.allocations),
         static_cast<std::int64_t>(st.total.allocations));
  if (summed.frees != st.total.frees)
    fail("sum over tags of frees", static_cast<std::int64_t>(summed.frees),
         static_cast<std::int64_t>(st.total.frees));
  if (st.total.allocations - st.total.frees != regions.size())
    fail("total allocations - frees (live regions)",
         static_cast<std::int64_t>(st.total.allocations - st.total.frees),
         static_cast<std::int64_t>(regions.size()));

  auto physical = static_cast<std::int64_t>(e.physical_bytes());
  if (st.total.reserved.current != physical)
    fail("total reserved.current vs physical_bytes()", st.total.reserved.current, physical);
  if (backend != nullptr) {
    auto info = backend->memory(e.device());
    if (!info.ok()) {
      out.push_back("backend memory(): " + info.error().to_string());
    } else if (static_cast<std::int64_t>(info->total - info->free) != physical) {
      fail("backend total - free vs physical_bytes()",
           static_cast<std::int64_t>(info->total - info->free), physical);
    }
  }
  double expected = st.total.reserved.current <= 0
                      ? 0.0
                      : 1.0 - static_cast<double>(st.total.active.current)
                                / static_cast<double>(st.total.reserved.current);
  if (std::abs(e.fragmentation() - expected) > 1e-9)
    out.push_back("fragmentation() = " + std::to_string(e.fragmentation()) + ", expected "
                  + std::to_string(expected));
  if (std::abs(st.total.fragmentation() - expected) > 1e-9)
    out.push_back("statistics().total.fragmentation() disagrees");
  return out;
}

/// Every way a snapshot disagrees with the engine: segment order and tiling, the
/// blocks against the live regions, tag states, the mapped bytes against the
/// statistics. Empty when they agree.
inline std::vector<std::string> snapshot_violations(const engine& e) {
  std::vector<std::string> out;
  auto snap = e.snapshot();
  auto regions = e.regions();
  const auto& st = e.statistics();
  std::map<region_id, region_info> live;
  for (const auto& r : regions)
    live.emplace(r.id, r);

  if (snap.state != e.state())
    out.push_back(std::string("snapshot state ") + core::to_string(snap.state) + ", engine "
                  + core::to_string(e.state()));
  if (snap.device != e.device())
    out.push_back("snapshot device differs");
  if (snap.regions.size() != regions.size()) {
    out.push_back("snapshot has " + std::to_string(snap.regions.size()) + " regions, engine "
                  + std::to_string(regions.size()));
  } else {
    for (std::size_t i = 0; i < regions.size(); ++i)
      if (snap.regions[i].id != regions[i].id || snap.regions[i].address != regions[i].address
          || snap.regions[i].size != regions[i].size
          || snap.regions[i].state != regions[i].state)
        out.push_back("snapshot region " + std::to_string(i) + " differs from regions()");
  }
  std::set<std::string> tags;
  for (const auto& t : e.tags())
    tags.insert(t);
  for (const auto& r : regions)
    tags.insert(e.tag_name(r.tag));
  for (const auto& t : tags) {
    auto it = snap.tag_states.find(t);
    std::string expected = e.tag_asleep(t) ? "asleep" : "awake";
    if (it == snap.tag_states.end())
      out.push_back("snapshot tag_states lacks tag " + t);
    else if (it->second != expected)
      out.push_back("snapshot tag_states[" + t + "] = " + it->second + ", expected " + expected);
  }

  std::set<region_id> seen;
  std::map<std::string, std::int64_t> mapped_by_tag, cached_by_tag;
  std::int64_t mapped_total = 0;
  device_ptr previous_end = 0;
  for (std::size_t s = 0; s < snap.segments.size(); ++s) {
    const auto& seg = snap.segments[s];
    std::string name = "segment " + std::to_string(s) + " (" + seg.tag + ", "
                       + std::to_string(seg.address) + ", " + std::to_string(seg.size) + ")";
    if (s > 0 && seg.address < previous_end)
      out.push_back(name + " is out of address order or overlaps the previous one");
    previous_end = seg.address + seg.size;
    if (seg.size == 0)
      out.push_back(name + " is empty");
    bool asleep = e.tag_asleep(seg.tag);
    if (seg.mapped == asleep)
      out.push_back(name + (seg.mapped ? " is mapped although its tag sleeps"
                                       : " is unmapped although its tag is awake"));
    device_ptr at = seg.address;
    std::size_t sum = 0;
    bool any_allocated = false;
    for (const auto& b : seg.blocks) {
      if (b.address != at)
        out.push_back(name + ": block at " + std::to_string(b.address) + " does not follow at "
                      + std::to_string(at));
      at = b.address + b.size;
      sum += b.size;
      if (!b.allocated) {
        if (b.region != 0 || b.requested != 0)
          out.push_back(name + ": a free block names region " + std::to_string(b.region));
        continue;
      }
      any_allocated = true;
      auto it = live.find(b.region);
      if (it == live.end()) {
        out.push_back(name + ": allocated block names region " + std::to_string(b.region)
                      + ", which is not live");
        continue;
      }
      if (!seen.insert(b.region).second)
        out.push_back(name + ": region " + std::to_string(b.region) + " has two blocks");
      const auto& r = it->second;
      if (b.address != r.address || b.size != r.size || b.requested != r.requested)
        out.push_back(name + ": block of region " + std::to_string(r.id)
                      + " differs in address, size or requested");
      if (e.tag_name(r.tag) != seg.tag)
        out.push_back(name + ": holds region " + std::to_string(r.id) + " of tag "
                      + e.tag_name(r.tag));
      if (b.state != r.state)
        out.push_back(name + ": block state differs from region " + std::to_string(r.id));
    }
    if (sum != seg.size)
      out.push_back(name + ": blocks sum to " + std::to_string(sum));
    if (seg.mapped) {
      mapped_total += static_cast<std::int64_t>(seg.size);
      mapped_by_tag[seg.tag] += static_cast<std::int64_t>(seg.size);
      if (!any_allocated)
        cached_by_tag[seg.tag] += static_cast<std::int64_t>(seg.size);
    }
  }
  for (const auto& r : regions)
    if (!seen.count(r.id))
      out.push_back("region " + std::to_string(r.id) + " (" + e.tag_name(r.tag)
                    + ") has no block in the snapshot");
  if (mapped_total != static_cast<std::int64_t>(e.physical_bytes()))
    out.push_back("mapped segments sum to " + std::to_string(mapped_total)
                  + ", physical_bytes() " + std::to_string(e.physical_bytes()));
  for (const auto& [tag, g] : st.tags) {
    if (g.reserved.current != mapped_by_tag[tag])
      out.push_back("tag " + tag + " reserved " + std::to_string(g.reserved.current)
                    + ", its mapped segments sum to " + std::to_string(mapped_by_tag[tag]));
    if (g.cached.current != cached_by_tag[tag])
      out.push_back("tag " + tag + " cached " + std::to_string(g.cached.current)
                    + ", its wholly free mapped segments sum to "
                    + std::to_string(cached_by_tag[tag]));
  }
  return out;
}

#define CHECK_STATISTICS(fx)                                                                     \
  do {                                                                                           \
    auto violations_ = ::gpumem::engine_test::statistics_violations(                             \
      *(fx).eng, (fx).device_is_own() ? &(fx).backend : nullptr);                                \
    INFO(::gpumem::engine_test::join(violations_));                                              \
    CHECK(violations_.empty());                                                                  \
  } while (false)

#define CHECK_SNAPSHOT(fx)                                                                       \
  do {                                                                                           \
    auto violations_ = ::gpumem::engine_test::snapshot_violations(*(fx).eng);                    \
    INFO(::gpumem::engine_test::join(violations_));                                              \
    CHECK(violations_.empty());                                                                  \
  } while (false)

#define CHECK_INVARIANTS(fx)                                                                     \
  do {                                                                                           \
    CHECK_STATISTICS(fx);                                                                        \
    CHECK_SNAPSHOT(fx);                                                                          \
  } while (false)

/// What must not change when an operation fails.
struct observable {
  std::vector<region_info> regions;
  std::size_t physical = 0;
  std::int64_t allocated = 0, requested = 0, active = 0, reserved = 0, cached = 0;
  std::uint64_t allocations = 0, frees = 0;
  engine_state state = engine_state::awake;
  std::vector<std::string> asleep;

  static observable of(const engine& e) {
    observable o;
    o.regions = e.regions();
    o.physical = e.physical_bytes();
    const auto& t = e.statistics().total;
    o.allocated = t.allocated.current;
    o.requested = t.requested.current;
    o.active = t.active.current;
    o.reserved = t.reserved.current;
    o.cached = t.cached.current;
    o.allocations = t.allocations;
    o.frees = t.frees;
    o.state = e.state();
    for (const auto& tag : e.tags())
      if (e.tag_asleep(tag))
        o.asleep.push_back(tag);
    return o;
  }

  /// The differences, one a line; empty when equal.
  std::string diff(const observable& now) const {
    std::ostringstream out;
    if (regions.size() != now.regions.size())
      out << "regions: " << regions.size() << " -> " << now.regions.size() << "\n";
    else
      for (std::size_t i = 0; i < regions.size(); ++i) {
        const auto& a = regions[i];
        const auto& b = now.regions[i];
        if (a.id != b.id || a.address != b.address || a.size != b.size
            || a.requested != b.requested || a.tag != b.tag || a.state != b.state)
          out << "region " << a.id << " changed\n";
      }
    auto field = [&](const char* name, auto before, auto after) {
      if (before != after)
        out << name << ": " << before << " -> " << after << "\n";
    };
    field("physical_bytes", physical, now.physical);
    field("allocated", allocated, now.allocated);
    field("requested", requested, now.requested);
    field("active", active, now.active);
    field("reserved", reserved, now.reserved);
    field("cached", cached, now.cached);
    field("allocations", allocations, now.allocations);
    field("frees", frees, now.frees);
    field("state", core::to_string(state), core::to_string(now.state));
    if (asleep != now.asleep)
      out << "the set of sleeping tags changed\n";
    return out.str();
  }
};

#define CHECK_UNCHANGED(before, e)                                                               \
  do {                                                                                           \
    auto diff_ = (before).diff(::gpumem::engine_test::observable::of(e));                        \
    INFO("changed by a failed operation:\n" << diff_);                                           \
    CHECK(diff_.empty());                                                                        \
  } while (false)

/// Requires that `r` failed with `code`, saying what happened instead.
#define CHECK_ERROR(r, expected_code)                                                            \
  do {                                                                                           \
    const auto& result_ = (r);                                                                   \
    INFO("expected " << ::gpumem::core::to_string(expected_code) << ", got "                    \
                     << ::gpumem::engine_test::outcome(result_));                                \
    REQUIRE_FALSE(result_.ok());                                                                 \
    CHECK(result_.error().code() == (expected_code));                                            \
  } while (false)

/// A lookup by the id of a freed region: no live region has it. The contract names
/// unknown_region; double_free ("was live once and has been freed") is accepted too.
#define CHECK_FREED_LOOKUP(r)                                                                    \
  do {                                                                                           \
    const auto& result_ = (r);                                                                   \
    INFO("expected unknown_region (or double_free), got "                                        \
         << ::gpumem::engine_test::outcome(result_));                                            \
    REQUIRE_FALSE(result_.ok());                                                                 \
    CHECK((result_.error().code() == ::gpumem::core::engine_errc::unknown_region                 \
           || result_.error().code() == ::gpumem::core::engine_errc::double_free));              \
  } while (false)

inline std::size_t sum_sizes(const std::vector<region_info>& rs) {
  std::size_t s = 0;
  for (const auto& r : rs)
    s += r.size;
  return s;
}
inline std::size_t sum_requested(const std::vector<region_info>& rs) {
  std::size_t s = 0;
  for (const auto& r : rs)
    s += r.requested;
  return s;
}

inline bool all_tags_asleep(const engine& e) {
  for (const auto& t : e.tags())
    if (!e.tag_asleep(t))
      return false;
  return true;
}

// --- workloads and transitions ------------------------------------------------------

/// A mix of regions in three tags and all strategies, each filled with its pattern
/// (seed = id): weights about 50 MiB, kv_cache about 26 MiB, activations about 8 MiB.
/// Wholly free segments are left cached, so a sleep has cache to release too.
inline std::vector<region_info> populate(engine& e) {
  struct spec {
    std::size_t size;
    const std::string* tag;
    strategy how;
  };
  std::vector<spec> specs = {
    {40 * MiB, &weights, strategy::pooled},
    {3 * MiB + 5, &weights, strategy::first_fit},
    {6 * MiB, &weights, strategy::dedicated},
    {1, &weights, strategy::pooled},
    {777, &weights, strategy::first_fit},
    {20 * MiB, &kv_cache, strategy::pooled},
    {4 * MiB, &kv_cache, strategy::dedicated},
    {8 * MiB, &activations, strategy::pooled},
  };
  for (std::size_t i = 0; i < 10; ++i)
    specs.push_back({100 * KiB + i * 1111, &weights, strategy::pooled});
  for (std::size_t i = 0; i < 5; ++i)
    specs.push_back({300 * KiB + i * 7, &kv_cache, strategy::first_fit});
  for (std::size_t i = 0; i < 3; ++i)
    specs.push_back({50 * KiB + i, &activations, strategy::pooled});
  // A segment emptied again: it stays cached.
  auto scratch = must_allocate(e, 5 * MiB, activations, strategy::pooled);

  std::vector<region_info> out;
  for (const auto& s : specs) {
    auto r = must_allocate(e, s.size, *s.tag, s.how);
    fill_region(r, r.id);
    out.push_back(r);
  }
  must_free(e, scratch.id);
  return out;
}

/// The regions of `e` in `rs` whose tag is (or is not) `tag`.
inline std::vector<region_info> with_tag(const engine& e, const std::vector<region_info>& rs,
                                         const std::string& tag) {
  std::vector<region_info> out;
  for (const auto& r : rs)
    if (e.tag_name(r.tag) == tag)
      out.push_back(r);
  return out;
}

inline std::vector<region_info> without_tag(const engine& e,
                                            const std::vector<region_info>& rs,
                                            const std::string& tag) {
  std::vector<region_info> out;
  for (const auto& r : rs)
    if (e.tag_name(r.tag) != tag)
      out.push_back(r);
  return out;
}

/// Calls advance() until it returns a value; `each` runs between the calls. Fails the
/// test if the transition has not finished within test::wait_limit.
template <class F>
core::engine_result<core::transition_report> finish_transition(engine& e, F&& each) {
  std::optional<core::engine_result<core::transition_report>> done;
  test::wait_until(
    "advance() to finish the transition",
    [&] {
      done = e.advance();
      if (!done)
        each();
      return done.has_value();
    },
    [&] { return std::string("the engine is still ") + core::to_string(e.state()); });
  if (!done)
    return core::engine_error(engine_errc::invalid_transition, "never finished");
  return std::move(*done);
}

inline core::engine_result<core::transition_report> finish_transition(engine& e) {
  return finish_transition(e, [] {});
}

/// Sleeps or fails the test with the engine's error.
inline core::transition_report must_sleep(engine& e, const sleep_policy& policy) {
  auto r = e.sleep(policy);
  INFO("sleep: " << outcome(r));
  REQUIRE(r.ok());
  return *r;
}

inline core::transition_report must_wake(engine& e, const std::vector<std::string>& tags = {}) {
  auto r = e.wake_up(tags);
  INFO("wake_up: " << outcome(r));
  REQUIRE(r.ok());
  return *r;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

} // namespace gpumem::engine_test
