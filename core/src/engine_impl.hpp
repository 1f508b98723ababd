#pragma once
// The engine's state, shared by the files that implement it: engine.cpp
// (allocation), engine_segments.cpp (physical memory), engine_transitions.cpp (sleep
// and wake) and engine_snapshot.cpp.

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "address_arena.hpp"
#include "block_index.hpp"
#include "gpumem/core/allocation_log.hpp"
#include "gpumem/core/engine.hpp"
#include "host_backup_store.hpp"
#include "region_table.hpp"

namespace gpumem::core {

namespace detail {

enum class pool_kind : std::uint8_t { small, large, dedicated };
inline constexpr std::uint32_t no_segment = 0xffffffffu;
const char* to_string(pool_kind kind) noexcept;

struct chunk_ref {
  cuda::chunk_handle handle = 0;
  std::size_t size = 0;
};

/// A contiguous range of the arena backed by physical chunks mapped back to back.
struct segment {
  cuda::device_ptr address = 0;
  std::size_t size = 0;
  std::uint32_t pool = 0;
  std::uint32_t first_block = no_block;  // the block at `address` (stable, see block_index)
  std::vector<chunk_ref> chunks;          // empty while unmapped (asleep)
  bool mapped = true;
  bool live = false;                      // the slot holds a segment
  std::list<std::uint32_t>::iterator cached_at;  // in the cache LRU while wholly free
  std::uint64_t cached_since_ns = 0;             // when it became wholly free
  bool cached = false;
};

/// One tag's memory of one kind (small, large or dedicated segments).
struct pool {
  std::uint32_t tag = 0;
  pool_kind kind = pool_kind::small;
  block_index blocks;
  std::uint32_t newest = no_segment;  // large pools grow their newest segment in place
};

/// a == b without a library call: tags are short, and comparing with the last tag
/// used is on every allocation's path. Words are compared with overlapping loads.
inline bool same_text(std::string_view a, std::string_view b) noexcept {
  auto n = a.size();
  if (n != b.size())
    return false;
  auto same_at = [&]<class Word>(std::size_t at, Word) {
    Word x, y;
    std::memcpy(&x, a.data() + at, sizeof x);
    std::memcpy(&y, b.data() + at, sizeof y);
    return x == y;
  };
  if (n >= 8) {
    for (std::size_t at = 0; at + 8 < n; at += 8)
      if (!same_at(at, std::uint64_t{}))
        return false;
    return same_at(n - 8, std::uint64_t{});
  }
  if (n >= 4)
    return same_at(0, std::uint32_t{}) && same_at(n - 4, std::uint32_t{});
  for (std::size_t at = 0; at < n; ++at)
    if (a[at] != b[at])
      return false;
  return true;
}

struct tag_record {
  std::string name;
  std::uint32_t pools[3] = {0, 0, 0};  // by pool_kind
  bool asleep = false;
  bool packed = false;          // listed in engine_config::packed_tags
  stat_grid* stats = nullptr;  // its entry in engine_statistics::tags (map nodes stay put)
};

/// One asynchronous copy of a sleep or wake, in flight or waiting to start.
struct copy_job {
  std::uint32_t region_slot;
  std::size_t offset;
  std::size_t size;
};

/// A sleep or wake that has begun and not finished.
struct transition {
  transition_kind kind = transition_kind::sleep;
  std::vector<std::uint32_t> tags;
  engine_state previous = engine_state::awake;
  std::deque<copy_job> pending;
  std::deque<cuda::copy_handle> in_flight;
  std::vector<std::uint32_t> mapped_segments;  // wake: what to undo on failure
  commit_mode mode = commit_mode::at_once;
  bool prepared = false;  // on_commit: the part that can fail is done
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::duration copy_time{};
  transition_report report;
};

} // namespace detail

struct engine::impl {
  impl(cuda::device_backend& b, engine_config c, cuda::device_properties p, cuda::device_ptr base,
       std::size_t arena_size)
    : backend(b), config(std::move(c)), props(std::move(p)), arena(base, arena_size),
      backups(b) {}

  cuda::device_backend& backend;
  engine_config config;
  cuda::device_properties props;
  detail::address_arena arena;
  detail::host_backup_store backups;
  detail::region_table regions;
  std::vector<detail::pool> pools;
  std::vector<detail::tag_record> tags;
  std::map<std::string, std::uint32_t, std::less<>> tag_ids;
  mutable std::uint32_t last_tag = 0;  // find_tag's one-entry cache
  std::vector<detail::segment> segments;
  std::vector<std::uint32_t> spare_segments;
  std::map<cuda::device_ptr, std::uint32_t> segments_by_address;
  std::list<std::uint32_t> cache_lru;  // wholly free mapped segments, oldest first
  std::size_t cached_bytes = 0;
  std::size_t mapped_bytes = 0;
  engine_statistics stats;
  std::optional<detail::transition> active;
  std::unique_ptr<allocation_log> log;
  std::function<std::uint64_t()> clock;  // empty: the steady clock
  /// The sticky device error that ended this engine's device; nothing more is asked
  /// of the device once it is set.
  std::optional<cuda::device_error> lost;

  // --- engine.cpp: the device's health and the synchronization contract -------------
  /// Notes a device error; a sticky one makes the device lost for good.
  void observe(const cuda::device_error& e);
  void observe(const cuda::status& s) {
    if (!s)
      observe(s.error());
  }
  /// device_failure naming the sticky error if the device is lost; `verb` says what
  /// was refused.
  engine_result<void> usable(const char* verb) const;
  /// Waits for all work queued on the device, the client's kernels included, before
  /// memory that was handed out is copied or unmapped (docs/gpu-contract.md).
  engine_result<void> settle(const std::string& why);
  /// Unmaps memory that was handed out, after settle(); false (and nothing unmapped)
  /// when the device's work could not be waited for.
  bool unmap_handed_out(cuda::device_ptr address, std::size_t size);

  // --- engine.cpp ------------------------------------------------------------------
  /// Steady nanoseconds by the engine's clock.
  std::uint64_t now() const;
  std::uint32_t tag_for(std::string_view name);
  std::optional<std::uint32_t> find_tag(std::string_view name) const {
    // Allocations come in runs of one tag: check the last one found before the map.
    if (last_tag < tags.size() && detail::same_text(tags[last_tag].name, name))
      return last_tag;
    return find_tag_in_map(name);
  }
  std::optional<std::uint32_t> find_tag_in_map(std::string_view name) const;
  stat_grid& grid(std::uint32_t tag) { return *tags[tag].stats; }
  /// Applies `delta` to one stat of a tag and of the total.
  void account(std::uint32_t tag, stat stat_grid::*field, std::int64_t delta);
  /// A region coming (sign +1) or going (-1): allocated, requested and, when it is
  /// resident, active bytes, for its tag and the total, with the counts.
  void account_region(const detail::region_record& r, std::int64_t sign) {
    auto size = static_cast<std::int64_t>(r.size);
    auto requested = static_cast<std::int64_t>(r.requested);
    bool resident = r.state == region_state::resident;
    for (auto* g : {&grid(r.tag), &stats.total}) {
      if (sign > 0) {
        g->allocated.increase(size);
        g->requested.increase(requested);
        if (resident)
          g->active.increase(size);
        ++g->allocations;
      } else {
        g->allocated.decrease(size);
        g->requested.decrease(requested);
        if (resident)
          g->active.decrease(size);
        ++g->frees;
      }
    }
  }
  /// The public description of a region.
  static region_info describe(const detail::region_record& r);
  engine_state current_state() const;
  engine_result<region_info> allocate(const allocation_request& request);
  engine_result<void> free_slot(std::uint32_t slot);
  engine_error out_of_memory(const allocation_request& request, const std::string& cause) const;

  // --- engine_segments.cpp -----------------------------------------------------------
  /// A new mapped segment of at least `size` bytes for `pool`, reusing cached chunks
  /// first (a cached chunk that covers the rest can make it larger).
  engine_result<std::uint32_t> create_segment(std::uint32_t pool, std::size_t size);
  /// Grows the pool's newest segment in place so that its free tail and new chunks
  /// together hold `size` bytes, and returns that tail block; no_block where growing
  /// would save nothing or the addresses after it are taken. Neighbouring
  /// allocations then share a granule.
  engine_result<std::uint32_t> grow_newest_segment(std::uint32_t pool, std::size_t size,
                                                   std::size_t alignment);
  /// The last block of a segment.
  std::uint32_t last_block(std::uint32_t s) const;
  /// Maps chunks over an unmapped segment at its own address (wake).
  engine_result<void> map_segment(std::uint32_t s);
  /// Chunks covering `size` bytes for `pool`: those of cached segments first, then new
  /// ones.
  /// `exact`: they sum to `size`; else they may sum to more, where a cached chunk
  /// covers the rest that no new one need be made. On failure nothing is held.
  engine_result<std::vector<detail::chunk_ref>> gather_chunks(std::size_t size, std::uint32_t pool,
                                                              bool exact);
  /// Maps `chunks` back to back at `address` and grants access; all or nothing.
  engine_result<void> map_chunks(cuda::device_ptr address,
                                 const std::vector<detail::chunk_ref>& chunks);
  void release_chunks(std::vector<detail::chunk_ref>& chunks);
  /// Unmaps a segment and releases its chunks; the address range stays with it.
  void unmap_segment(std::uint32_t s);
  /// Unmaps (if mapped) and forgets a wholly free segment, returning its addresses.
  void destroy_segment(std::uint32_t s);
  /// Cuts a cached segment after its first chunks that hold `size` bytes; the chunks
  /// after them become a cached segment of their own, mapped where they are, as idle
  /// as before. Nothing is unmapped: a request takes as much of the cache as it needs.
  void split_cached(std::uint32_t s, std::size_t size);
  /// Gives a cached segment to `pool` (its block to that pool's index, its bytes to
  /// that pool's tag); it stays cached, mapped where it is.
  void rehome_cached(std::uint32_t s, std::uint32_t pool);
  /// Files a wholly free segment in the cache, idle from `now`.
  void mark_cached(std::uint32_t s, std::uint64_t now);
  /// Appends cached segment `t` to cached segment `s`, which it directly follows in
  /// the arena (their chunks are mapped back to back): one cached segment, as idle as
  /// the younger.
  void absorb_cached(std::uint32_t s, std::uint32_t t);
  /// The first run of cached segments side by side in the arena that holds `size`
  /// bytes, merged into one cached segment (nothing unmapped); no_segment if none.
  std::uint32_t merge_cached_run(std::size_t size);
  void unmark_cached(std::uint32_t s);
  /// Releases cached segments, oldest first, until at most `keep` bytes stay cached.
  trim_report release_cache(std::size_t keep);
  /// Releases the cached segments idle for config.cache_decay or longer at `now`;
  /// nothing while a transition runs or once the device is lost.
  trim_report release_idle(std::uint64_t now);
  /// Frees chunks at the ends of live segments that lie wholly in a free tail block.
  std::size_t release_free_tails();
  /// New chunks for `size` bytes of `pool`.
  std::vector<detail::chunk_ref> plan_chunks(std::size_t size, std::uint32_t pool) const;

  // --- engine_transitions.cpp ----------------------------------------------------------
  /// The tags named, each known and asleep (or each awake), in order, once each.
  engine_result<std::vector<std::uint32_t>> named_tags(const std::vector<std::string>& names,
                                                       bool asleep, const char* verb) const;
  detail::transition start_transition(transition_kind kind,
                                      const std::vector<std::uint32_t>& which) const;
  engine_result<void> begin_sleep(const sleep_policy& policy, commit_mode mode);
  engine_result<void> begin_wake(const std::vector<std::string>& names, commit_mode mode);
  std::optional<engine_result<transition_report>> advance(bool block);
  engine_error abort_transition(const cuda::device_error& cause);
  /// Undoes the transition under way or prepared, losing nothing (see engine::abort).
  void roll_back_transition();
  /// Finishes the transition whose part that can fail is done; its report.
  transition_report finish_transition();
  void finish_sleep();
  void finish_wake();

  // --- engine_snapshot.cpp -----------------------------------------------------------
  memory_snapshot snapshot() const;
};

} // namespace gpumem::core
