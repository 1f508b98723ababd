#pragma once
// The engine's vocabulary: requests, regions, states, sleep policies and reports.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gpumem/core/engine_error.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core {

using cuda::device_ptr;

/// A region's id: never reused within one engine, so a stale id is detected.
using region_id = std::uint64_t;

/// A tag's number within one engine: tags are numbered from 0 in the order they first
/// appear and never renumbered; engine::tag_name() names one, engine::tags() lists
/// them in this order. Results carry the number, so that no call copies a name.
using tag_id = std::uint32_t;

/// How an allocation gets its memory.
enum class strategy : std::uint8_t {
  pooled,     // best fit in the tag's pool (bounded look into the size class, then O(1))
  first_fit,  // the first block of the smallest size class that surely fits: O(1), looser
  dedicated,  // its own physical chunks, rounded to the granularity, released on free (vLLM)
};
const char* to_string(strategy s) noexcept;
/// "pooled", "first_fit", "dedicated"; anything else is unknown_strategy.
engine_result<strategy> parse_strategy(std::string_view name);

/// The engine as a whole. Asleep means at least one tag is asleep.
enum class engine_state { awake, falling_asleep, asleep, waking };
const char* to_string(engine_state s) noexcept;

/// Where a region's bytes are.
enum class region_state : std::uint8_t {
  resident,   // mapped on the device
  backed_up,  // asleep; the bytes wait in host memory
  discarded,  // asleep; the bytes are gone
};
const char* to_string(region_state s) noexcept;

inline constexpr std::string_view default_tag = "default";

struct allocation_request {
  std::size_t size = 0;
  std::string_view tag = default_tag;  // read during the call only, never kept
  strategy how = strategy::pooled;
  std::size_t alignment = 0;  // 0: the engine's default (256 B); else a power of two
};

struct region_info {
  region_id id = 0;
  device_ptr address = 0;
  std::size_t size = 0;       // what the region occupies (rounded)
  std::size_t requested = 0;  // what was asked for
  tag_id tag = 0;             // engine::tag_name(tag) names it
  strategy how = strategy::pooled;
  region_state state = region_state::resident;
  bool contents_defined = true;   // false after waking from a discard
  std::uint64_t last_use_ns = 0;  // steady clock; touch() renews it
};

/// What a sleep keeps. Level 1 backs up `weights` and discards the rest; level 2
/// discards everything; an explicit list backs up exactly those tags. `tags` limits
/// the sleep to some tags (empty: every tag).
struct sleep_policy {
  std::vector<std::string> backup_tags{"weights"};
  std::vector<std::string> tags;

  static sleep_policy level(int level);  // 1 or 2; others throw std::invalid_argument
  static sleep_policy backing_up(std::vector<std::string> tags);
};

enum class transition_kind { sleep, wake };

/// When a sleep or wake finishes: as soon as its copies are done, or only when the
/// owner commits (two phases; see engine::begin_sleep).
enum class commit_mode { at_once, on_commit };

/// What one sleep or wake did.
struct transition_report {
  transition_kind kind = transition_kind::sleep;
  std::vector<std::string> tags;
  std::size_t bytes_backed_up = 0;   // sleep: device -> host
  std::size_t bytes_discarded = 0;   // sleep: live bytes dropped
  std::size_t bytes_released = 0;    // sleep: physical memory given back
  std::size_t bytes_mapped = 0;      // wake: physical memory mapped again
  std::size_t bytes_restored = 0;    // wake: host -> device
  double seconds = 0;
  double copy_seconds = 0;           // the part spent waiting for copies
  /// Bytes copied per second of the whole transition.
  double bandwidth() const;
};

struct trim_report {
  std::size_t bytes_released = 0;
  std::size_t segments_released = 0;
};

struct defragment_report {
  std::size_t bytes_released_cached = 0;  // wholly free segments
  std::size_t bytes_released_tails = 0;   // free chunks at the end of live segments
  std::size_t segments_released = 0;
  double fragmentation_before = 0;
  double fragmentation_after = 0;
};

} // namespace gpumem::core
