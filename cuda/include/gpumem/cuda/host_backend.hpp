#pragma once
// The host backend: CUDA's virtual memory semantics on Linux host memory.
//
// A real implementation, not a mock: reservations are mmap(PROT_NONE) ranges,
// physical chunks are memfd files (fallocated, so the pages exist), map is
// mmap(MAP_FIXED|MAP_SHARED) of the chunk's file with no access, set_access is
// mprotect(read|write), unmap puts PROT_NONE back, and a released chunk's pages go
// back to the kernel with its last mapping. Each emulated device has a capacity and
// a granularity; creating past capacity fails with CUDA_ERROR_OUT_OF_MEMORY. Copies
// run on one copy thread per device, the analogue of a copy engine.
//
// It is the embedded default and the CI backend, and can serve host memory pools.
// Fault injection makes the Nth call of an operation fail with a chosen error.

#include <cstddef>
#include <memory>
#include <vector>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::cuda {

struct host_device_config {
  std::size_t capacity = std::size_t{4} << 30;          // bytes of "device memory"
  std::size_t granularity = std::size_t{2} << 20;       // minimum: CUDA's 2 MiB
  std::size_t recommended_granularity = std::size_t{2} << 20;
};

struct host_backend_config {
  std::vector<host_device_config> devices{host_device_config{}, host_device_config{}};
};

/// The operations fault injection can make fail.
enum class fault_point { reserve, create, map, set_access, copy };

class host_backend final : public device_backend {
public:
  explicit host_backend(host_backend_config config = {});
  ~host_backend() override;
  host_backend(const host_backend&) = delete;
  host_backend& operator=(const host_backend&) = delete;

  std::string_view name() const noexcept override { return "host"; }
  result<int> device_count() override;
  result<device_properties> properties(int device) override;
  result<memory_info> memory(int device) override;
  result<device_ptr> reserve(int device, std::size_t size, std::size_t alignment = 0) override;
  status free_reservation(device_ptr base, std::size_t size) override;
  result<chunk_handle> create_chunk(int device, std::size_t size) override;
  status release_chunk(chunk_handle chunk) override;
  status map(device_ptr address, std::size_t size, chunk_handle chunk) override;
  status unmap(device_ptr address, std::size_t size) override;
  status set_access(int device, device_ptr address, std::size_t size) override;
  result<pinned_buffer> allocate_pinned(std::size_t size) override;
  result<copy_handle> copy_to_host_async(int device, void* dst, device_ptr src,
                                         std::size_t size) override;
  result<copy_handle> copy_to_device_async(int device, device_ptr dst, const void* src,
                                           std::size_t size) override;
  status synchronize(int device) override;

  /// Makes the `nth` call (1: the next one) of `point` from now fail with `code`.
  /// A copy fault is reported by the copy's completion, as an asynchronous error is.
  void inject_fault(fault_point point, int nth, error_code code);
  /// Forgets every pending fault.
  void clear_faults();

  /// What the backend holds right now, for leak checks in tests.
  struct usage {
    std::size_t reservations = 0;
    std::size_t chunks = 0;          // live handles plus released-but-still-mapped
    std::size_t mappings = 0;
    std::size_t physical_bytes = 0;  // summed over devices
  };
  usage current_usage() const;

private:
  struct state;
  std::unique_ptr<state> state_;
};

} // namespace gpumem::cuda
