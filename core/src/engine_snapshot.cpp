// The snapshot: segments in address order, each with its chunks and the blocks that
// tile it, plus regions, states and statistics.

#include <algorithm>

#include "engine_impl.hpp"

namespace gpumem::core {

using namespace detail;

memory_snapshot engine::impl::snapshot() const {
  memory_snapshot snap;
  snap.device = config.device;
  snap.backend = std::string(backend.name());
  snap.arena_base = arena.base();
  snap.arena_size = arena.size();
  snap.state = current_state();
  for (const auto& t : tags)
    snap.tag_states[t.name] = t.asleep ? "asleep" : "awake";

  for (const auto& [address, s] : segments_by_address) {
    const auto& seg = segments[s];
    const auto& p = pools[seg.pool];
    snapshot_segment out;
    out.address = seg.address;
    out.size = seg.size;
    out.tag = tags[p.tag].name;
    out.pool = to_string(p.kind);
    out.mapped = seg.mapped;
    auto chunk_address = seg.address;
    for (const auto& c : seg.chunks) {
      out.chunks.push_back({chunk_address, c.size});
      chunk_address += c.size;
    }
    for (auto b = seg.first_block; b != no_block; b = p.blocks.at(b).next_in_segment) {
      const auto& blk = p.blocks.at(b);
      snapshot_block block;
      block.address = blk.address;
      block.size = blk.size();
      block.allocated = !blk.free();
      if (!blk.free()) {
        const auto& r = regions.at(blk.owner());
        block.requested = r.requested;
        block.region = r.id;
        block.state = r.state;
      }
      out.blocks.push_back(block);
    }
    snap.segments.push_back(std::move(out));
  }

  regions.for_each([&](std::uint32_t, const region_record& r) {
    snapshot_region out;
    out.id = r.id;
    out.address = r.address;
    out.size = r.size;
    out.requested = r.requested;
    out.tag = tags[r.tag].name;
    out.how = r.how;
    out.state = r.state;
    out.contents_defined = r.contents_defined;
    out.last_use_ns = r.last_use_ns;
    snap.regions.push_back(std::move(out));
  });
  std::sort(snap.regions.begin(), snap.regions.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  snap.statistics = stats;
  return snap;
}

} // namespace gpumem::core
