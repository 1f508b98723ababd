#pragma once
// Pinned host memory for the bytes of sleeping regions. Slabs are allocated once and
// kept across sleep cycles (pinning is slow, and a second sleep should cost no new
// host memory); space is handed out by a bump pointer and all of it is reused as soon
// as no backup is live.

#include <cstddef>
#include <vector>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core::detail {

class host_backup_store {
public:
  explicit host_backup_store(cuda::device_backend& backend, std::size_t slab_size = 256 << 20);

  /// Room for `size` bytes, growing by a slab when the current ones are full.
  cuda::result<std::byte*> reserve(std::size_t size);
  /// Gives back `size` bytes of a backup; the store rewinds once none is live.
  void release(std::size_t size);
  /// Forgets every backup (after a failed sleep); keeps the slabs.
  void reset();

  std::size_t live_bytes() const noexcept { return live_; }
  std::size_t capacity() const noexcept;

private:
  cuda::device_backend& backend_;
  std::size_t slab_size_;
  std::vector<cuda::pinned_buffer> slabs_;
  std::size_t slab_ = 0;    // the slab the bump pointer is in
  std::size_t offset_ = 0;  // the bump pointer within it
  std::size_t live_ = 0;
};

} // namespace gpumem::core::detail
