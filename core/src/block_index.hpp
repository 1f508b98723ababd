#pragma once
// The blocks of one pool and the index of its free ones: a two-level segregated fit
// (TLSF) structure. Free blocks sit in lists by size class; two bitmaps find the first
// non-empty class that fits in O(1), with no scan of the free blocks. Blocks are
// linked to their neighbours in the same segment, so a free block merges with free
// neighbours at once.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core::detail {

inline constexpr std::uint32_t no_block = 0xffffffffu;
/// Every block size and address is a multiple of this.
inline constexpr std::size_t block_unit = 256;
/// A block's size is kept in 32 bits of units, so no block (and no device, whose
/// memory bounds every segment) reaches this size.
inline constexpr std::size_t max_block_bytes = (std::size_t{1} << 32) * block_unit;

/// One block: 32 bytes, two to a cache line, since with many regions live the blocks
/// are most of what an allocate and a free touch.
class block {
public:
  cuda::device_ptr address = 0;
  std::uint32_t segment = 0;
  std::uint32_t prev_in_segment = no_block;
  std::uint32_t next_in_segment = no_block;

  std::size_t size() const noexcept { return std::size_t{units_} * block_unit; }
  bool free() const noexcept { return next_free_ != allocated; }
  /// The region's slot while allocated (set by the owner after allocate_from).
  std::uint32_t owner() const noexcept { return free() ? no_block : link_; }
  void set_owner(std::uint32_t slot) noexcept { link_ = slot; }

private:
  friend class block_index;
  static constexpr std::uint32_t allocated = 0xfffffffeu;  // next_free_ of an allocated block

  std::uint32_t units_ = 0;
  std::uint32_t link_ = no_block;        // free: the previous free block; else the owner
  std::uint32_t next_free_ = allocated;  // free: the next free block (or no_block)
};
static_assert(sizeof(block) == 32);

/// How find() chooses among free blocks.
enum class fit_mode {
  best,  // the smallest fit among a few blocks of the request's own class, else good
  good,  // the head of the first class whose every block fits (TLSF's O(1) search)
};

class block_index {
public:
  block_index();

  /// Adds a free block spanning a whole new segment; returns it.
  std::uint32_t add_segment(cuda::device_ptr address, std::size_t size, std::uint32_t segment);
  /// A free block that holds `size` bytes at `alignment`, or no_block.
  std::uint32_t find(std::size_t size, std::size_t alignment, fit_mode mode) const;
  /// Allocates `size` bytes at `alignment` from free block `b` (from find()); the
  /// leading gap and the tail stay free. Returns the allocated block.
  std::uint32_t allocate_from(std::uint32_t b, std::size_t size, std::size_t alignment);
  /// Frees an allocated block and merges it with free neighbours; returns the merged
  /// block, which spans its whole segment when the segment is now empty.
  std::uint32_t release(std::uint32_t b);
  /// Drops a free block that spans its whole segment (the segment goes away).
  void remove_segment_block(std::uint32_t b);
  /// Grows a free block that ends its segment by `extra` bytes (the segment grew).
  void grow_free_tail(std::uint32_t b, std::size_t extra);
  /// Cuts a free block that ends its segment to `new_size` bytes (0: drops it).
  void shrink_free_tail(std::uint32_t b, std::size_t new_size);

  /// Starts loading block `b`, so that the cache miss overlaps other work.
  void prefetch(std::uint32_t b) const { __builtin_prefetch(&blocks_[b]); }
  const block& at(std::uint32_t b) const { return blocks_[b]; }
  block& at(std::uint32_t b) { return blocks_[b]; }
  bool spans_segment(std::uint32_t b) const {
    return blocks_[b].prev_in_segment == no_block && blocks_[b].next_in_segment == no_block;
  }
  std::size_t free_bytes() const noexcept { return free_bytes_; }
  std::size_t free_blocks() const noexcept { return free_count_; }

private:
  static constexpr int sl_bits = 4;
  static constexpr int sl_count = 1 << sl_bits;
  static constexpr int fl_count = 32 - sl_bits + 1;  // every 32-bit unit count has a class

  static void size_class(std::size_t units, int& fl, int& sl) {
    if (units < sl_count) {
      fl = 0;
      sl = static_cast<int>(units);
      return;
    }
    int log2 = std::bit_width(units) - 1;
    fl = log2 - sl_bits + 1;
    sl = static_cast<int>((units >> (log2 - sl_bits)) & (sl_count - 1));
  }
  /// Cuts block `b` after `head_size` bytes; returns the new block holding the rest
  /// (linked into the segment, not into a free list).
  std::uint32_t split(std::uint32_t b, std::size_t head_size);
  std::uint32_t first_fitting_class_head(std::size_t units) const;
  void link_free(std::uint32_t b);
  void unlink_free(std::uint32_t b);
  std::uint32_t new_block();
  void drop_block(std::uint32_t b);

  std::vector<block> blocks_;
  std::uint32_t spare_ = no_block;  // the first unused block; each names the next in next_in_segment
  std::uint32_t fl_bitmap_ = 0;
  std::array<std::uint32_t, fl_count> sl_bitmap_{};
  std::array<std::array<std::uint32_t, sl_count>, fl_count> heads_;
  std::size_t free_bytes_ = 0;
  std::size_t free_count_ = 0;
};

} // namespace gpumem::core::detail
