#pragma once
// A device backend that forwards every call to another and keeps the cost of the
// physical memory: chunks created and released, their bytes, and the time spent
// creating (create_chunk), mapping (map, set_access) and releasing (unmap,
// release_chunk). `gpumem replay` tells the backend's time apart from the engine's
// own with it.

#include <chrono>
#include <cstddef>
#include <unordered_map>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::replay {

struct backend_costs {
  std::size_t chunks_created = 0;
  std::size_t chunks_released = 0;
  std::size_t bytes_created = 0;
  std::size_t bytes_released = 0;
  std::chrono::nanoseconds create_time{0};
  std::chrono::nanoseconds map_time{0};
  std::chrono::nanoseconds release_time{0};

  std::chrono::nanoseconds total_time() const { return create_time + map_time + release_time; }
};

class timed_backend final : public cuda::device_backend {
public:
  explicit timed_backend(cuda::device_backend& inner) : inner_(inner) {}

  const backend_costs& costs() const noexcept { return costs_; }

  std::string_view name() const noexcept override { return inner_.name(); }
  cuda::result<int> device_count() override { return inner_.device_count(); }
  cuda::result<cuda::device_properties> properties(int device) override {
    return inner_.properties(device);
  }
  cuda::result<cuda::memory_info> memory(int device) override { return inner_.memory(device); }
  cuda::result<cuda::device_ptr> reserve(int device, std::size_t size,
                                         std::size_t alignment) override {
    return inner_.reserve(device, size, alignment);
  }
  cuda::status free_reservation(cuda::device_ptr base, std::size_t size) override {
    return inner_.free_reservation(base, size);
  }
  cuda::result<cuda::chunk_handle> create_chunk(int device, std::size_t size) override;
  cuda::status release_chunk(cuda::chunk_handle chunk) override;
  cuda::status map(cuda::device_ptr address, std::size_t size, cuda::chunk_handle chunk) override;
  cuda::status unmap(cuda::device_ptr address, std::size_t size) override;
  cuda::status set_access(int device, cuda::device_ptr address, std::size_t size) override;
  cuda::result<cuda::pinned_buffer> allocate_pinned(std::size_t size) override {
    return inner_.allocate_pinned(size);
  }
  cuda::result<cuda::copy_handle> copy_to_host_async(int device, void* dst, cuda::device_ptr src,
                                                     std::size_t size) override {
    return inner_.copy_to_host_async(device, dst, src, size);
  }
  cuda::result<cuda::copy_handle> copy_to_device_async(int device, cuda::device_ptr dst,
                                                       const void* src,
                                                       std::size_t size) override {
    return inner_.copy_to_device_async(device, dst, src, size);
  }
  cuda::status synchronize(int device) override { return inner_.synchronize(device); }

private:
  cuda::device_backend& inner_;
  backend_costs costs_;
  std::unordered_map<cuda::chunk_handle, std::size_t> chunk_sizes_;
};

} // namespace gpumem::replay
