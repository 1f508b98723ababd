#include "host_backup_store.hpp"

#include <algorithm>

namespace gpumem::core::detail {

namespace {
constexpr std::size_t backup_alignment = 256;
}

host_backup_store::host_backup_store(cuda::device_backend& backend, std::size_t slab_size)
  : backend_(backend), slab_size_(slab_size) {}

cuda::result<std::byte*> host_backup_store::reserve(std::size_t size) {
  auto rounded = cuda::round_up(size, backup_alignment);
  while (slab_ < slabs_.size() && offset_ + rounded > slabs_[slab_].size()) {
    ++slab_;
    offset_ = 0;
  }
  if (slab_ == slabs_.size()) {
    auto slab = backend_.allocate_pinned(std::max(slab_size_, rounded));
    if (!slab)
      return slab.error();
    slabs_.push_back(std::move(slab).value());
  }
  auto* data = slabs_[slab_].data() + offset_;
  offset_ += rounded;
  live_ += rounded;
  return data;
}

void host_backup_store::release(std::size_t size) {
  live_ -= std::min(live_, cuda::round_up(size, backup_alignment));
  if (live_ == 0)
    reset();
}

void host_backup_store::reset() {
  slab_ = 0;
  offset_ = 0;
  live_ = 0;
}

std::size_t host_backup_store::capacity() const noexcept {
  std::size_t total = 0;
  for (const auto& s : slabs_)
    total += s.size();
  return total;
}

} // namespace gpumem::core::detail
