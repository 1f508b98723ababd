#include "block_index.hpp"

#include <bit>
#include <cassert>

namespace gpumem::core::detail {

namespace {

std::size_t padding_for(cuda::device_ptr address, std::size_t alignment) {
  auto misalignment = address % alignment;
  return misalignment == 0 ? 0 : alignment - misalignment;
}

// How many blocks of the request's own class a best-fit search looks at: enough to
// find a close fit, few enough to stay O(1).
constexpr int best_fit_probe = 16;

} // namespace

block_index::block_index() {
  for (auto& row : heads_)
    row.fill(no_block);
}

std::uint32_t block_index::first_fitting_class_head(std::size_t units) const {
  // Round up to the next class boundary: every block of that class or above fits.
  if (units >= sl_count) {
    int log2 = std::bit_width(units) - 1;
    units += (std::size_t{1} << (log2 - sl_bits)) - 1;
  }
  int fl = 0;
  int sl = 0;
  size_class(units, fl, sl);
  if (fl >= fl_count)
    return no_block;
  std::uint32_t sl_map = sl_bitmap_[static_cast<std::size_t>(fl)] & (~0u << sl);
  if (sl_map == 0) {
    if (fl + 1 >= fl_count)
      return no_block;
    std::uint32_t fl_map = fl_bitmap_ & (~0u << (fl + 1));
    if (fl_map == 0)
      return no_block;
    fl = std::countr_zero(fl_map);
    sl_map = sl_bitmap_[static_cast<std::size_t>(fl)];
  }
  sl = std::countr_zero(sl_map);
  return heads_[static_cast<std::size_t>(fl)][static_cast<std::size_t>(sl)];
}

std::uint32_t block_index::find(std::size_t size, std::size_t alignment, fit_mode mode) const {
  auto units = size / block_unit;
  if (mode == fit_mode::best) {
    int fl = 0;
    int sl = 0;
    size_class(units, fl, sl);
    if (fl < fl_count) {
      std::uint32_t best = no_block;
      std::size_t best_size = ~std::size_t{0};
      auto b = heads_[static_cast<std::size_t>(fl)][static_cast<std::size_t>(sl)];
      for (int probe = 0; b != no_block && probe < best_fit_probe; ++probe) {
        const auto& candidate = blocks_[b];
        auto needed = size + padding_for(candidate.address, alignment);
        if (candidate.size() >= needed && candidate.size() < best_size) {
          best = b;
          best_size = candidate.size();
          if (candidate.size() == needed)
            break;
        }
        b = candidate.next_free_;
      }
      if (best != no_block)
        return best;
    }
  }
  // Worst-case padding included, so any block found fits at any address.
  auto worst_padding = alignment > block_unit ? alignment - block_unit : 0;
  return first_fitting_class_head(units + worst_padding / block_unit);
}

std::uint32_t block_index::split(std::uint32_t b, std::size_t head_size) {
  auto second = new_block();
  auto& first = blocks_[b];
  auto& rest = blocks_[second];
  auto head_units = static_cast<std::uint32_t>(head_size / block_unit);
  rest.address = first.address + head_size;
  rest.units_ = first.units_ - head_units;
  rest.segment = first.segment;
  rest.prev_in_segment = b;
  rest.next_in_segment = first.next_in_segment;
  if (first.next_in_segment != no_block)
    blocks_[first.next_in_segment].prev_in_segment = second;
  first.next_in_segment = second;
  first.units_ = head_units;
  return second;
}

std::uint32_t block_index::allocate_from(std::uint32_t b, std::size_t size,
                                         std::size_t alignment) {
  unlink_free(b);
  auto padding = padding_for(blocks_[b].address, alignment);
  assert(blocks_[b].size() >= size + padding);
  if (padding > 0) {
    // The gap in front keeps the block's slot and stays free; the rest is a new block.
    auto rest = split(b, padding);
    link_free(b);
    b = rest;
  }
  if (blocks_[b].size() > size)
    link_free(split(b, size));
  return b;
}

std::uint32_t block_index::release(std::uint32_t b) {
  // Merge the next block into this one, then this one into the previous: the block
  // at the lower address always survives, so a segment's first block never changes.
  auto next = blocks_[b].next_in_segment;
  if (next != no_block && blocks_[next].free()) {
    unlink_free(next);
    blocks_[b].units_ += blocks_[next].units_;
    blocks_[b].next_in_segment = blocks_[next].next_in_segment;
    if (blocks_[b].next_in_segment != no_block)
      blocks_[blocks_[b].next_in_segment].prev_in_segment = b;
    drop_block(next);
  }
  auto prev = blocks_[b].prev_in_segment;
  if (prev != no_block && blocks_[prev].free()) {
    unlink_free(prev);
    blocks_[prev].units_ += blocks_[b].units_;
    blocks_[prev].next_in_segment = blocks_[b].next_in_segment;
    if (blocks_[prev].next_in_segment != no_block)
      blocks_[blocks_[prev].next_in_segment].prev_in_segment = prev;
    drop_block(b);
    b = prev;
  }
  link_free(b);
  return b;
}

std::uint32_t block_index::add_segment(cuda::device_ptr address, std::size_t size,
                                       std::uint32_t segment) {
  auto b = new_block();
  auto& blk = blocks_[b];
  blk.address = address;
  blk.units_ = static_cast<std::uint32_t>(size / block_unit);
  blk.segment = segment;
  link_free(b);
  return b;
}

void block_index::remove_segment_block(std::uint32_t b) {
  assert(blocks_[b].free() && spans_segment(b));
  unlink_free(b);
  drop_block(b);
}

void block_index::grow_free_tail(std::uint32_t b, std::size_t extra) {
  assert(blocks_[b].free() && blocks_[b].next_in_segment == no_block);
  unlink_free(b);
  blocks_[b].units_ += static_cast<std::uint32_t>(extra / block_unit);
  link_free(b);
}

void block_index::shrink_free_tail(std::uint32_t b, std::size_t new_size) {
  assert(blocks_[b].free() && blocks_[b].next_in_segment == no_block);
  unlink_free(b);
  if (new_size == 0) {
    auto prev = blocks_[b].prev_in_segment;
    if (prev != no_block)
      blocks_[prev].next_in_segment = no_block;
    drop_block(b);
    return;
  }
  blocks_[b].units_ = static_cast<std::uint32_t>(new_size / block_unit);
  link_free(b);
}

void block_index::link_free(std::uint32_t b) {
  auto& blk = blocks_[b];
  int fl = 0;
  int sl = 0;
  size_class(blk.units_, fl, sl);
  auto& head = heads_[static_cast<std::size_t>(fl)][static_cast<std::size_t>(sl)];
  blk.link_ = no_block;
  blk.next_free_ = head;
  if (head != no_block)
    blocks_[head].link_ = b;
  head = b;
  sl_bitmap_[static_cast<std::size_t>(fl)] |= 1u << sl;
  fl_bitmap_ |= 1u << fl;
  free_bytes_ += blk.size();
  ++free_count_;
}

void block_index::unlink_free(std::uint32_t b) {
  auto& blk = blocks_[b];
  int fl = 0;
  int sl = 0;
  size_class(blk.units_, fl, sl);
  auto& head = heads_[static_cast<std::size_t>(fl)][static_cast<std::size_t>(sl)];
  if (blk.link_ != no_block)
    blocks_[blk.link_].next_free_ = blk.next_free_;
  else
    head = blk.next_free_;
  if (blk.next_free_ != no_block)
    blocks_[blk.next_free_].link_ = blk.link_;
  if (head == no_block) {
    sl_bitmap_[static_cast<std::size_t>(fl)] &= ~(1u << sl);
    if (sl_bitmap_[static_cast<std::size_t>(fl)] == 0)
      fl_bitmap_ &= ~(1u << fl);
  }
  blk.link_ = no_block;
  blk.next_free_ = block::allocated;
  free_bytes_ -= blk.size();
  --free_count_;
}

std::uint32_t block_index::new_block() {
  if (spare_ != no_block) {
    auto b = spare_;
    spare_ = blocks_[b].next_in_segment;
    blocks_[b] = block{};
    return b;
  }
  blocks_.emplace_back();
  return static_cast<std::uint32_t>(blocks_.size() - 1);
}

void block_index::drop_block(std::uint32_t b) {
  blocks_[b] = block{};
  blocks_[b].next_in_segment = spare_;
  spare_ = b;
}

} // namespace gpumem::core::detail
