#pragma once
// Page-locked host memory owned by RAII: returned to its backend when destroyed.

#include <cstddef>
#include <functional>
#include <utility>

namespace gpumem::cuda {

class pinned_buffer {
public:
  using releaser = std::function<void(void*, std::size_t)>;

  pinned_buffer() = default;
  pinned_buffer(void* data, std::size_t size, releaser release)
    : data_(data), size_(size), release_(std::move(release)) {}
  pinned_buffer(pinned_buffer&& other) noexcept { swap(other); }
  pinned_buffer& operator=(pinned_buffer&& other) noexcept {
    pinned_buffer moved(std::move(other));
    swap(moved);
    return *this;
  }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  ~pinned_buffer() {
    if (data_ != nullptr && release_)
      release_(data_, size_);
  }

  std::byte* data() const noexcept { return static_cast<std::byte*>(data_); }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return data_ == nullptr; }

private:
  void swap(pinned_buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(release_, other.release_);
  }

  void* data_ = nullptr;
  std::size_t size_ = 0;
  releaser release_;
};

} // namespace gpumem::cuda
