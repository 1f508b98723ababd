#pragma once
// The device layer: the one interface through which gpumem touches GPU memory.
//
// It is a thin, faithful cut of CUDA's virtual memory management API (cuMem*):
// reserve a virtual address range, create physical chunks, map them into the range,
// grant access, copy to and from pinned host memory asynchronously. Everything above
// this layer (the engine, the actors) is written against it, so the same code runs on
// a GPU (cuda_driver_backend) and on Linux host memory (host_backend).
//
// Thread safety: every backend may be called from several threads at once, as the
// CUDA driver may. Copies in flight must not overlap an unmap of their range.
// Work of the client: memory handed out may still be read or written by work the
// client queued (kernels); synchronize(device) waits for it, and whoever copies or
// unmaps such memory calls it first (docs/gpu-contract.md).
// Lifetime: pinned buffers and copy handles should not outlive the backend that made
// them (the CUDA backend tolerates it). A copy handle is used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "gpumem/cuda/device_error.hpp"
#include "gpumem/cuda/pinned_buffer.hpp"

namespace gpumem::cuda {

/// A device virtual address (CUdeviceptr).
using device_ptr = std::uintptr_t;

/// An opaque handle to one physical chunk (CUmemGenericAllocationHandle).
using chunk_handle = std::uint64_t;

struct device_properties {
  int ordinal = 0;
  std::string name;
  std::size_t total_memory = 0;
  bool vmm_supported = false;
  std::size_t granularity_minimum = 0;      // every size, offset and address aligns to this
  std::size_t granularity_recommended = 0;  // the driver's advice for performance
};

/// Free and total physical memory of a device (cuMemGetInfo); on a GPU the free
/// figure includes what other processes hold.
struct memory_info {
  std::size_t free = 0;
  std::size_t total = 0;
};

/// Completion of one asynchronous copy. Waiting or polling after the copy finished
/// is cheap; the object may be dropped before the copy ends (it still runs).
class copy_completion {
public:
  virtual ~copy_completion() = default;
  /// True once the copy has finished, successfully or not. Never blocks.
  virtual bool ready() = 0;
  /// Blocks until the copy finished; its outcome.
  virtual status wait() = 0;
};

using copy_handle = std::unique_ptr<copy_completion>;

class device_backend {
public:
  virtual ~device_backend() = default;

  /// "host" or "cuda".
  virtual std::string_view name() const noexcept = 0;

  virtual result<int> device_count() = 0;
  virtual result<device_properties> properties(int device) = 0;
  virtual result<memory_info> memory(int device) = 0;

  /// Reserves `size` bytes of virtual address space (a multiple of the minimum
  /// granularity) aligned to `alignment` (0: the granularity). No memory behind it.
  virtual result<device_ptr> reserve(int device, std::size_t size, std::size_t alignment = 0) = 0;
  /// Returns a whole reservation; it must hold no mappings.
  virtual status free_reservation(device_ptr base, std::size_t size) = 0;

  /// Creates a physical chunk of `size` bytes (a multiple of the minimum granularity).
  virtual result<chunk_handle> create_chunk(int device, std::size_t size) = 0;
  /// Drops the handle; the memory is freed once its last mapping is unmapped. A
  /// handle this backend did not make (0, or one released) is CUDA_ERROR_INVALID_VALUE.
  virtual status release_chunk(chunk_handle chunk) = 0;

  /// Maps the first `size` bytes of `chunk` to `address`, inside a reservation, over a
  /// range that holds no mapping. Not accessible until set_access. (cuMemMap maps from
  /// offset zero only: a chunk is never mapped in parts at offsets.)
  virtual status map(device_ptr address, std::size_t size, chunk_handle chunk) = 0;
  /// Unmaps a range made of whole mappings.
  virtual status unmap(device_ptr address, std::size_t size) = 0;
  /// Grants `device` read-write access to a mapped range.
  virtual status set_access(int device, device_ptr address, std::size_t size) = 0;

  /// Page-locked host memory, the source and target of fast copies.
  virtual result<pinned_buffer> allocate_pinned(std::size_t size) = 0;

  /// Starts copying `size` bytes from device memory at `src` to host memory at `dst`.
  /// Copies on one device run in the order they were started.
  virtual result<copy_handle> copy_to_host_async(int device, void* dst, device_ptr src,
                                                 std::size_t size) = 0;
  /// Starts copying `size` bytes from host memory at `src` to device memory at `dst`.
  virtual result<copy_handle> copy_to_device_async(int device, device_ptr dst, const void* src,
                                                   std::size_t size) = 0;

  /// Waits until all work queued on `device` has finished, the client's included
  /// (on CUDA: cuCtxSynchronize in the device's primary context). Call it before
  /// copying or unmapping memory that was handed out.
  virtual status synchronize(int device) = 0;
};

/// Rounds `size` up to a multiple of `granularity` (a power of two or any non-zero value).
constexpr std::size_t round_up(std::size_t size, std::size_t granularity) noexcept {
  return (size + granularity - 1) / granularity * granularity;
}

} // namespace gpumem::cuda
