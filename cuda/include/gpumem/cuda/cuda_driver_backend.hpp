#pragma once
// The CUDA driver backend: cuMem* on real GPUs.
//
// libcuda.so.1 is loaded at run time (dlopen, entry points through cuGetProcAddress),
// so one binary runs on machines with and without a GPU. Physical chunks are
// cuMemCreate pinned device memory, mapped with cuMemMap and opened with
// cuMemSetAccess; copies run on dedicated per-device streams (one per direction)
// into pinned host memory, with an event per copy for completion. Errors keep CUDA's
// own names (cuGetErrorName).

#include <memory>
#include <string>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::cuda {

class cuda_driver_backend final : public device_backend {
public:
  /// Loads the driver from `library` and initialises it. Without a driver, the error
  /// says so in one line and names the host backend as the alternative.
  static result<std::unique_ptr<cuda_driver_backend>> open(
    const std::string& library = "libcuda.so.1");

  ~cuda_driver_backend() override;
  cuda_driver_backend(const cuda_driver_backend&) = delete;
  cuda_driver_backend& operator=(const cuda_driver_backend&) = delete;

  std::string_view name() const noexcept override { return "cuda"; }
  result<int> device_count() override;
  result<device_properties> properties(int device) override;
  result<memory_info> memory(int device) override;
  result<device_ptr> reserve(int device, std::size_t size, std::size_t alignment = 0) override;
  status free_reservation(device_ptr base, std::size_t size) override;
  result<chunk_handle> create_chunk(int device, std::size_t size) override;
  status release_chunk(chunk_handle chunk) override;
  status map(device_ptr address, std::size_t size, chunk_handle chunk,
             std::size_t offset = 0) override;
  status unmap(device_ptr address, std::size_t size) override;
  status set_access(int device, device_ptr address, std::size_t size) override;
  result<pinned_buffer> allocate_pinned(std::size_t size) override;
  result<copy_handle> copy_to_host_async(int device, void* dst, device_ptr src,
                                         std::size_t size) override;
  result<copy_handle> copy_to_device_async(int device, device_ptr dst, const void* src,
                                           std::size_t size) override;

  struct state;  // the loaded driver and per-device contexts and streams

private:
  explicit cuda_driver_backend(std::unique_ptr<state> s);
  std::unique_ptr<state> state_;
};

} // namespace gpumem::cuda
