#pragma once
// A snapshot of one engine's memory: every segment (with its chunks), every block
// (allocated or free), every region, the states and the statistics. PyTorch's
// snapshot shape (segments holding blocks), so its readers feel at home.
// The JSON form is documented in docs/snapshot.md and is stable.

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "gpumem/core/engine_types.hpp"
#include "gpumem/core/statistics.hpp"

namespace gpumem::core {

struct snapshot_chunk {
  device_ptr address = 0;
  std::size_t size = 0;
};

struct snapshot_block {
  device_ptr address = 0;
  std::size_t size = 0;
  std::size_t requested = 0;  // 0 for a free block
  bool allocated = false;
  region_id region = 0;       // 0 for a free block
  region_state state = region_state::resident;
};

/// A region as a snapshot keeps it: region_info's fields with the tag by name, so that
/// the snapshot stands on its own (JSON, other processes) without the engine.
struct snapshot_region {
  region_id id = 0;
  device_ptr address = 0;
  std::size_t size = 0;
  std::size_t requested = 0;
  std::string tag;
  strategy how = strategy::pooled;
  region_state state = region_state::resident;
  bool contents_defined = true;
  std::uint64_t last_use_ns = 0;
};

struct snapshot_segment {
  device_ptr address = 0;
  std::size_t size = 0;
  std::string tag;
  std::string pool;           // "small", "large" or "dedicated"
  bool mapped = true;         // false while its tag sleeps
  std::vector<snapshot_chunk> chunks;
  std::vector<snapshot_block> blocks;  // in address order, tiling the segment
};

struct memory_snapshot {
  int device = 0;
  std::string backend;
  device_ptr arena_base = 0;
  std::size_t arena_size = 0;
  engine_state state = engine_state::awake;
  std::map<std::string, std::string> tag_states;  // tag -> "awake" or "asleep"
  std::vector<snapshot_segment> segments;         // in address order
  std::vector<snapshot_region> regions;           // in id order
  engine_statistics statistics;

  /// The documented JSON form; `indent` < 0 gives one line.
  std::string to_json(int indent = 2) const;
  /// Reads what to_json wrote; a malformed document is invalid_config.
  static engine_result<memory_snapshot> from_json(const std::string& text);
};

} // namespace gpumem::core
