#pragma once
// The in-run baseline of the engine's allocation benchmarks: the free-list algorithm
// of RAPIDS RMM's pool_memory_resource (its coalescing_free_list), over one buffer.
//
// Free blocks sit in a std::list ordered by address. allocate() finds the best fit by
// scanning the whole list (the smallest block that fits; std::min_element in RMM),
// takes it out and puts the remainder back with insert(). deallocate() inserts the
// block at its place in address order, found by a linear scan, and coalesces it with
// its neighbours. Every operation is O(free blocks), which is what the engine's
// size-class index is measured against. Sizes round up to 256 bytes, as RMM's do.

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <list>

namespace gpumem::bench {

class linear_best_fit {
public:
  static constexpr std::size_t alignment = 256;

  /// Manages [base, base + size); the memory is never touched.
  linear_best_fit(std::byte* base, std::size_t size) : free_{block{base, size}} {}

  /// The best fit for `size`, or nullptr when no free block is large enough.
  std::byte* allocate(std::size_t size) {
    size = round(size);
    const auto best = std::min_element(free_.begin(), free_.end(),
                                       [size](const block& a, const block& b) {
                                         return a.fits(size) && (!b.fits(size) || a.size < b.size);
                                       });
    if (best == free_.end() || !best->fits(size))
      return nullptr;
    const block found = *best;
    free_.erase(best);
    if (found.size > size)
      insert(block{found.ptr + size, found.size - size});
    return found.ptr;
  }

  /// Returns a block allocate() gave out; `size` is what was asked for then.
  void deallocate(std::byte* ptr, std::size_t size) { insert(block{ptr, round(size)}); }

  std::size_t free_blocks() const noexcept { return free_.size(); }

private:
  struct block {
    std::byte* ptr;
    std::size_t size;
    bool fits(std::size_t bytes) const noexcept { return size >= bytes; }
    std::byte* end() const noexcept { return ptr + size; }
  };

  static std::size_t round(std::size_t size) noexcept {
    return (size + alignment - 1) / alignment * alignment;
  }

  /// Address-ordered insertion with coalescing (coalescing_free_list::insert).
  void insert(block b) {
    const auto next =
      std::find_if(free_.begin(), free_.end(), [&b](const block& x) { return b.ptr < x.ptr; });
    const bool merge_next = next != free_.end() && b.end() == next->ptr;
    const auto previous = next == free_.begin() ? free_.end() : std::prev(next);
    const bool merge_previous = previous != free_.end() && previous->end() == b.ptr;
    if (merge_previous && merge_next) {
      previous->size += b.size + next->size;
      free_.erase(next);
    } else if (merge_previous) {
      previous->size += b.size;
    } else if (merge_next) {
      next->ptr = b.ptr;
      next->size += b.size;
    } else {
      free_.insert(next, b);
    }
  }

  std::list<block> free_;
};

} // namespace gpumem::bench
