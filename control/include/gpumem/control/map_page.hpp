#pragma once
// The memory map: one self-contained HTML page (inline CSS and JavaScript, no network)
// drawn from device snapshots in the documented JSON form (docs/snapshot.md). Per
// snapshot: the arena as a band of segments (mapped, cached, released while asleep),
// every segment's blocks coloured by tag and state with their size, tag, region and
// age on hover, the statistics grid, and fragmentation by tag as a chart.
// GET /v1/map serves it; `gpumem snapshot --html` writes it from snapshot files.
//
// The page embeds its data as JSON in <script type="application/json"> (every '<',
// '>' and '&' escaped, so no tag can end the element) and draws it when loaded. Hooks
// for tools and tests (docs/control.md): each segment an element of class `segment`
// with data-state, data-tag, data-size; each block of class `block` with data-state,
// data-tag, data-size, data-region; <body data-rendered="1"> once drawn and
// data-script-errors counting the script errors raised.

#include <string>
#include <vector>

namespace gpumem::control {

struct map_snapshot {
  std::string label;  // how the page names it: "device 0", or a file's name
  std::string json;   // one device's snapshot, docs/snapshot.md's document
};

/// The page for these snapshots, in order, under `title`. Throws std::invalid_argument
/// naming the snapshot's label and what is wrong for a document it cannot draw (not
/// JSON, not a snapshot, a field it draws missing or of the wrong type); a full check
/// is core::memory_snapshot::from_json's.
std::string map_page(const std::vector<map_snapshot>& snapshots, const std::string& title);

} // namespace gpumem::control
