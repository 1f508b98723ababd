// Physical memory: segments built from chunks, the cache of wholly free segments,
// and giving memory back (trim, free tails).

#include <algorithm>

#include "engine_impl.hpp"

namespace gpumem::core {

using namespace detail;

namespace {

engine_error from_device(const std::string& doing, const cuda::device_error& e) {
  // (Callers observe() the error first, so a sticky one marks the device lost.)
  // The device running out of memory is the engine running out of memory.
  auto code = e.code() == cuda::error_code::out_of_memory ? engine_errc::out_of_memory
                                                          : engine_errc::device_failure;
  return {code, doing + ": " + e.to_string(), e};
}

} // namespace

std::vector<chunk_ref> engine::impl::plan_chunks(std::size_t size, std::uint32_t pool) const {
  // Large chunks for the bulk of long-lived memory (fewer maps), small ones for the
  // rest (no rounding waste) and for every other tag: what they free is cached, and
  // small chunks serve a request of any size exactly when the cache is reused.
  std::vector<chunk_ref> plan;
  if (tags[pools[pool].tag].packed)
    for (; size >= config.large_chunk; size -= config.large_chunk)
      plan.push_back({0, config.large_chunk});
  for (; size > 0; size -= config.small_chunk)
    plan.push_back({0, config.small_chunk});
  return plan;
}

engine_result<std::vector<chunk_ref>> engine::impl::gather_chunks(std::size_t size,
                                                                 std::uint32_t pool, bool exact) {
  // Chunks of cached segments first: never new physical memory while a cached chunk
  // would do. Whole segments that fit, oldest first; then chunks off the end of larger
  // ones, which stay cached with the rest.
  std::vector<chunk_ref> reused;
  std::size_t missing = size;
  auto take_chunks_of = [&](std::uint32_t s) {
    auto& seg = segments[s];
    reused.insert(reused.end(), seg.chunks.begin(), seg.chunks.end());
    seg.chunks.clear();
    unmap_handed_out(seg.address, seg.size);
    mapped_bytes -= seg.size;
    account(pools[seg.pool].tag, &stat_grid::reserved, -static_cast<std::int64_t>(seg.size));
    seg.mapped = false;
    destroy_segment(s);
  };
  // Takes the segment's last `count` chunks; the rest stays cached, mapped in place.
  auto take_last_chunks_of = [&](std::uint32_t s, std::size_t count) {
    auto& seg = segments[s];
    if (count == seg.chunks.size()) {
      take_chunks_of(s);
      return;
    }
    auto keep = seg.chunks.size() - count;
    std::size_t taken = 0;
    for (auto i = keep; i < seg.chunks.size(); ++i)
      taken += seg.chunks[i].size;
    auto kept_size = seg.size - taken;
    auto cut = seg.address + kept_size;
    unmap_handed_out(cut, taken);
    reused.insert(reused.end(), seg.chunks.begin() + static_cast<std::ptrdiff_t>(keep),
                  seg.chunks.end());
    seg.chunks.resize(keep);
    pools[seg.pool].blocks.shrink_free_tail(seg.first_block, kept_size);
    arena.release(cut, taken);
    seg.size = kept_size;
    mapped_bytes -= taken;
    cached_bytes -= taken;
    account(pools[seg.pool].tag, &stat_grid::reserved, -static_cast<std::int64_t>(taken));
    account(pools[seg.pool].tag, &stat_grid::cached, -static_cast<std::int64_t>(taken));
  };
  for (auto it = cache_lru.begin(); it != cache_lru.end() && missing > 0;) {
    auto s = *it++;
    if (segments[s].size <= missing) {
      missing -= segments[s].size;
      take_chunks_of(s);
    }
  }
  // Every cached segment left is larger than what is missing.
  for (auto it = cache_lru.begin(); it != cache_lru.end() && missing > 0; ++it) {
    const auto& chunks = segments[*it].chunks;
    std::size_t count = 0;
    for (auto i = chunks.size(); i > 1 && chunks[i - 1].size <= missing; --i) {
      missing -= chunks[i - 1].size;
      ++count;
    }
    if (count > 0)
      take_last_chunks_of(*it, count);
  }
  if (missing > 0 && !cache_lru.empty()) {
    if (!exact) {
      // The smallest last chunk that covers the rest: the new memory is that much
      // larger, and nothing is created or given back.
      auto best = cache_lru.front();
      for (auto s : cache_lru)
        if (segments[s].chunks.back().size < segments[best].chunks.back().size)
          best = s;
      missing -= std::min(missing, segments[best].chunks.back().size);
      take_last_chunks_of(best, 1);
    } else {
      // Exactly `size`: the front segment in part; its chunks that do not fit go back
      // to the device, which the new ones then come from.
      take_chunks_of(cache_lru.front());
    }
  }

  std::sort(reused.begin(), reused.end(),
            [](const chunk_ref& a, const chunk_ref& b) { return a.size > b.size; });
  std::vector<chunk_ref> chunks;
  std::size_t covered = 0;
  for (auto& c : reused) {
    if (!exact || covered + c.size <= size) {
      chunks.push_back(c);
      covered += c.size;
    } else {
      (void)backend.release_chunk(c.handle);
      ++stats.chunks_released;
    }
  }
  stats.chunks_reused += chunks.size();
  for (auto& c : plan_chunks(size - std::min(size, covered), pool)) {
    auto handle = backend.create_chunk(config.device, c.size);
    if (!handle) {
      observe(handle.error());
      release_chunks(chunks);
      return from_device("creating a " + format_bytes(c.size) + " chunk", handle.error());
    }
    chunks.push_back({*handle, c.size});
    ++stats.chunks_created;
  }
  return chunks;
}

engine_result<void> engine::impl::map_chunks(cuda::device_ptr address,
                                             const std::vector<chunk_ref>& chunks) {
  std::size_t mapped = 0;
  for (const auto& c : chunks) {
    if (auto m = backend.map(address + mapped, c.size, c.handle); !m) {
      observe(m.error());
      if (mapped > 0)
        (void)backend.unmap(address, mapped);
      return engine_error{engine_errc::device_failure, "mapping a chunk: " + m.error().to_string(),
                          m.error()};
    }
    mapped += c.size;
  }
  if (auto a = backend.set_access(config.device, address, mapped); !a) {
    observe(a.error());
    (void)backend.unmap(address, mapped);
    return engine_error{engine_errc::device_failure, "granting access: " + a.error().to_string(),
                        a.error()};
  }
  return {};
}

void engine::impl::release_chunks(std::vector<chunk_ref>& chunks) {
  for (auto& c : chunks)
    (void)backend.release_chunk(c.handle);
  stats.chunks_released += chunks.size();
  chunks.clear();
}

engine_result<std::uint32_t> engine::impl::create_segment(std::uint32_t p, std::size_t size) {
  auto no_range = [&](std::size_t bytes) {
    return engine_error{engine_errc::out_of_memory,
                        "the address arena has no free range of " + format_bytes(bytes) + " ("
                          + format_bytes(arena.free_bytes()) + " free in pieces)"};
  };
  // A cached segment as large, of any tag, is taken as it lies: cut to size and
  // given to this pool, nothing unmapped or mapped. (Segments are created rarely, and
  // the cache holds few: a look at each is cheap.)
  if (pools[p].kind != pool_kind::dedicated) {
    auto best = no_segment;
    for (auto c : cache_lru)
      if (segments[c].size >= size && (best == no_segment || segments[c].size < segments[best].size))
        best = c;
    if (best == no_segment && cached_bytes >= size)
      best = merge_cached_run(size);
    if (best != no_segment) {
      split_cached(best, size);
      rehome_cached(best, p);
      stats.chunks_reused += segments[best].chunks.size();
      if (pools[p].kind == pool_kind::large)
        pools[p].newest = best;
      return best;
    }
  }
  auto address = arena.allocate(size);
  if (!address)
    return no_range(size);
  // A dedicated region owns chunks of its own size (released on free): no more.
  auto chunks = gather_chunks(size, p, pools[p].kind == pool_kind::dedicated);
  if (!chunks) {
    arena.release(*address, size);
    return chunks.error();
  }
  // A cached chunk larger than the rest may make the segment larger than asked.
  std::size_t total = 0;
  for (const auto& c : *chunks)
    total += c.size;
  if (total > size && !arena.extend(*address + size, total - size)) {
    arena.release(*address, size);
    address = arena.allocate(total);
    if (!address) {
      release_chunks(*chunks);
      return no_range(total);
    }
  }
  size = total;
  if (auto mapped = map_chunks(*address, *chunks); !mapped) {
    release_chunks(*chunks);
    arena.release(*address, size);
    return mapped.error();
  }

  std::uint32_t s;
  if (!spare_segments.empty()) {
    s = spare_segments.back();
    spare_segments.pop_back();
  } else {
    s = static_cast<std::uint32_t>(segments.size());
    segments.emplace_back();
  }
  auto& seg = segments[s];
  seg = segment{};
  seg.address = *address;
  seg.size = size;
  seg.pool = p;
  seg.chunks = std::move(chunks).value();
  seg.live = true;
  seg.first_block = pools[p].blocks.add_segment(*address, size, s);
  segments_by_address.emplace(*address, s);
  mapped_bytes += size;
  account(pools[p].tag, &stat_grid::reserved, static_cast<std::int64_t>(size));
  ++stats.segments_created;
  if (pools[p].kind == pool_kind::large)
    pools[p].newest = s;
  return s;
}

std::uint32_t engine::impl::last_block(std::uint32_t s) const {
  const auto& blocks = pools[segments[s].pool].blocks;
  auto b = segments[s].first_block;
  while (blocks.at(b).next_in_segment != no_block)
    b = blocks.at(b).next_in_segment;
  return b;
}

engine_result<std::uint32_t> engine::impl::grow_newest_segment(std::uint32_t p, std::size_t size,
                                                      std::size_t alignment) {
  auto s = pools[p].newest;
  if (s == no_segment || !segments[s].live || !segments[s].mapped)
    return no_block;
  auto& blocks = pools[p].blocks;
  auto tail = last_block(s);
  if (!blocks.at(tail).free())
    return no_block;
  auto tail_address = blocks.at(tail).address;
  auto padding = cuda::round_up(tail_address, alignment) - tail_address;
  if (blocks.at(tail).size() <= padding)
    return no_block;
  auto usable = blocks.at(tail).size() - padding;
  auto extra = cuda::round_up(size - std::min(size, usable), config.small_chunk);
  if (extra == 0 || extra >= cuda::round_up(size, config.small_chunk))
    return no_block;  // a fresh segment would cost as much
  auto end = segments[s].address + segments[s].size;
  if (!arena.extend(end, extra))
    return no_block;
  // Out of the cache first, so that gathering chunks cannot dissolve this segment.
  bool was_cached = segments[s].cached;
  if (was_cached)
    unmark_cached(s);
  auto undo = [&] {
    arena.release(end, extra);
    if (was_cached)
      mark_cached(s, now());
  };
  auto chunks = gather_chunks(extra, p, true);
  if (!chunks) {
    undo();
    return chunks.error();
  }
  if (auto mapped = map_chunks(end, *chunks); !mapped) {
    release_chunks(*chunks);
    undo();
    return mapped.error();
  }
  auto& seg = segments[s];
  seg.chunks.insert(seg.chunks.end(), chunks->begin(), chunks->end());
  seg.size += extra;
  blocks.grow_free_tail(tail, extra);
  mapped_bytes += extra;
  account(pools[p].tag, &stat_grid::reserved, static_cast<std::int64_t>(extra));
  return tail;
}

engine_result<void> engine::impl::map_segment(std::uint32_t s) {
  auto size = segments[s].size;
  auto chunks = gather_chunks(size, segments[s].pool, true);
  if (!chunks)
    return chunks.error();
  if (auto mapped = map_chunks(segments[s].address, *chunks); !mapped) {
    release_chunks(*chunks);
    return mapped.error();
  }
  auto& seg = segments[s];  // gather_chunks may have grown the segment table
  seg.chunks = std::move(chunks).value();
  seg.mapped = true;
  mapped_bytes += size;
  account(pools[seg.pool].tag, &stat_grid::reserved, static_cast<std::int64_t>(size));
  return {};
}

void engine::impl::unmap_segment(std::uint32_t s) {
  auto& seg = segments[s];
  if (seg.cached)
    unmark_cached(s);
  // The segment's chunks are its only mappings in its range, so one unmap covers it.
  unmap_handed_out(seg.address, seg.size);
  for (auto& c : seg.chunks)
    (void)backend.release_chunk(c.handle);
  stats.chunks_released += seg.chunks.size();
  seg.chunks.clear();
  seg.mapped = false;
  mapped_bytes -= seg.size;
  account(pools[seg.pool].tag, &stat_grid::reserved, -static_cast<std::int64_t>(seg.size));
}

void engine::impl::destroy_segment(std::uint32_t s) {
  if (segments[s].cached)
    unmark_cached(s);
  if (segments[s].mapped)
    unmap_segment(s);
  auto& seg = segments[s];
  pools[seg.pool].blocks.remove_segment_block(seg.first_block);
  arena.release(seg.address, seg.size);
  segments_by_address.erase(seg.address);
  if (pools[seg.pool].newest == s)
    pools[seg.pool].newest = no_segment;
  seg = segment{};
  spare_segments.push_back(s);
  ++stats.segments_released;
}

void engine::impl::split_cached(std::uint32_t s, std::size_t size) {
  std::size_t keep = 0, kept = 0;
  while (keep < segments[s].chunks.size() && kept < size)
    kept += segments[s].chunks[keep++].size;
  if (keep == segments[s].chunks.size())
    return;
  std::uint32_t t;
  if (!spare_segments.empty()) {
    t = spare_segments.back();
    spare_segments.pop_back();
  } else {
    t = static_cast<std::uint32_t>(segments.size());
    segments.emplace_back();
  }
  auto& seg = segments[s];
  auto& tail = segments[t];
  tail = segment{};
  tail.address = seg.address + kept;
  tail.size = seg.size - kept;
  tail.pool = seg.pool;
  tail.chunks.assign(seg.chunks.begin() + static_cast<std::ptrdiff_t>(keep), seg.chunks.end());
  tail.live = true;
  tail.cached = true;
  tail.cached_since_ns = seg.cached_since_ns;
  tail.cached_at = cache_lru.insert(std::next(seg.cached_at), t);  // the same age
  seg.chunks.resize(keep);
  seg.size = kept;
  auto& blocks = pools[seg.pool].blocks;
  blocks.shrink_free_tail(seg.first_block, kept);
  tail.first_block = blocks.add_segment(tail.address, tail.size, t);
  segments_by_address.emplace(tail.address, t);
  ++stats.segments_created;
}

std::uint32_t engine::impl::merge_cached_run(std::size_t size) {
  // Neighbours in the arena are neighbours in segments_by_address.
  std::uint32_t first = no_segment;
  std::size_t run = 0;
  cuda::device_ptr end = 0;
  for (const auto& [address, s] : segments_by_address) {
    if (!segments[s].cached) {
      first = no_segment;
      continue;
    }
    if (first == no_segment || address != end) {
      first = s;
      run = 0;
    }
    run += segments[s].size;
    end = address + segments[s].size;
    if (run >= size)
      break;
  }
  if (first == no_segment || run < size)
    return no_segment;
  while (segments[first].size < size) {
    auto next = segments_by_address.upper_bound(segments[first].address)->second;
    absorb_cached(first, next);
  }
  return first;
}

void engine::impl::rehome_cached(std::uint32_t s, std::uint32_t pool) {
  auto& seg = segments[s];
  auto from = seg.pool;
  if (from == pool)
    return;
  auto bytes = static_cast<std::int64_t>(seg.size);
  pools[from].blocks.remove_segment_block(seg.first_block);
  if (pools[from].newest == s)
    pools[from].newest = no_segment;
  account(pools[from].tag, &stat_grid::reserved, -bytes);
  account(pools[from].tag, &stat_grid::cached, -bytes);
  seg.pool = pool;
  seg.first_block = pools[pool].blocks.add_segment(seg.address, seg.size, s);
  account(pools[pool].tag, &stat_grid::reserved, bytes);
  account(pools[pool].tag, &stat_grid::cached, bytes);
}

void engine::impl::mark_cached(std::uint32_t s, std::uint64_t now) {
  auto& seg = segments[s];
  seg.cached = true;
  seg.cached_since_ns = now;
  seg.cached_at = cache_lru.insert(cache_lru.end(), s);
  cached_bytes += seg.size;
  account(pools[seg.pool].tag, &stat_grid::cached, static_cast<std::int64_t>(seg.size));
}

void engine::impl::absorb_cached(std::uint32_t s, std::uint32_t t) {
  rehome_cached(t, segments[s].pool);
  auto& seg = segments[s];
  auto& next = segments[t];
  // As idle as the younger: it takes the younger one's place in the cache's order.
  if (next.cached_since_ns > seg.cached_since_ns) {
    seg.cached_since_ns = next.cached_since_ns;
    cache_lru.splice(next.cached_at, cache_lru, seg.cached_at);
  }
  cache_lru.erase(next.cached_at);
  auto bytes = next.size;
  auto& blocks = pools[seg.pool].blocks;
  blocks.remove_segment_block(next.first_block);
  blocks.grow_free_tail(seg.first_block, bytes);
  seg.chunks.insert(seg.chunks.end(), next.chunks.begin(), next.chunks.end());
  seg.size += bytes;
  segments_by_address.erase(next.address);
  if (pools[seg.pool].newest == t)
    pools[seg.pool].newest = no_segment;
  next = segment{};
  spare_segments.push_back(t);
  ++stats.segments_released;
}

void engine::impl::unmark_cached(std::uint32_t s) {
  auto& seg = segments[s];
  cache_lru.erase(seg.cached_at);
  seg.cached = false;
  cached_bytes -= seg.size;
  account(pools[seg.pool].tag, &stat_grid::cached, -static_cast<std::int64_t>(seg.size));
}

trim_report engine::impl::release_cache(std::size_t keep) {
  trim_report report;
  while (cached_bytes > keep && !cache_lru.empty()) {
    auto s = cache_lru.front();
    report.bytes_released += segments[s].size;
    ++report.segments_released;
    destroy_segment(s);
  }
  return report;
}

trim_report engine::impl::release_idle(std::uint64_t now) {
  trim_report report;
  if (active || lost)
    return report;
  // The cache is in the order its segments became idle: the oldest are in front.
  auto decay = static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::nanoseconds>(config.cache_decay).count());
  while (!cache_lru.empty()) {
    auto s = cache_lru.front();
    auto since = segments[s].cached_since_ns;
    if (now < since || now - since < decay)
      break;
    report.bytes_released += segments[s].size;
    ++report.segments_released;
    destroy_segment(s);
  }
  return report;
}

std::size_t engine::impl::release_free_tails() {
  std::size_t released = 0;
  for (std::uint32_t s = 0; s < segments.size(); ++s) {
    auto& seg = segments[s];
    if (!seg.live || !seg.mapped || seg.cached || seg.chunks.size() < 2)
      continue;
    auto& blocks = pools[seg.pool].blocks;
    auto last = last_block(s);
    if (!blocks.at(last).free())
      continue;
    // Chunks that lie wholly in the free tail go; the live bytes stay where they are.
    auto free_from = blocks.at(last).address;
    auto end = seg.address + seg.size;
    auto cut = end;
    auto keep = seg.chunks.size();
    while (keep > 1 && cut - seg.chunks[keep - 1].size >= free_from) {
      cut -= seg.chunks[keep - 1].size;
      --keep;
    }
    if (cut == end)
      continue;
    unmap_handed_out(cut, end - cut);
    for (auto i = keep; i < seg.chunks.size(); ++i)
      (void)backend.release_chunk(seg.chunks[i].handle);
    stats.chunks_released += seg.chunks.size() - keep;
    seg.chunks.resize(keep);
    blocks.shrink_free_tail(last, cut - free_from);
    arena.release(cut, end - cut);
    seg.size = cut - seg.address;
    mapped_bytes -= end - cut;
    account(pools[seg.pool].tag, &stat_grid::reserved, -static_cast<std::int64_t>(end - cut));
    released += end - cut;
  }
  return released;
}

} // namespace gpumem::core
