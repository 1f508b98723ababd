#pragma once
// Hands out ranges of one reserved virtual address range: best fit over free ranges,
// neighbours coalesced on release. Segments are few and large, so O(log n) maps suffice.

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core::detail {

class address_arena {
public:
  address_arena(cuda::device_ptr base, std::size_t size);

  /// A range of `size` bytes (a multiple of the granularity), or nothing if no free
  /// range is large enough.
  std::optional<cuda::device_ptr> allocate(std::size_t size);
  /// Takes [address, address + size) if it is free: lets a segment grow in place.
  bool extend(cuda::device_ptr address, std::size_t size);
  /// Gives back a range allocate() returned, or its tail.
  void release(cuda::device_ptr address, std::size_t size);

  cuda::device_ptr base() const noexcept { return base_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t free_bytes() const noexcept { return free_bytes_; }

private:
  void insert_free(cuda::device_ptr address, std::size_t size);
  void erase_free(std::map<cuda::device_ptr, std::size_t>::iterator it);

  cuda::device_ptr base_;
  std::size_t size_;
  std::size_t free_bytes_ = 0;
  std::map<cuda::device_ptr, std::size_t> by_address_;
  std::set<std::pair<std::size_t, cuda::device_ptr>> by_size_;
};

} // namespace gpumem::core::detail
