#pragma once
// The CUDA driver backend: cuMem* on real GPUs.
//
// libcuda.so.1 is loaded at run time (dlopen, entry points through cuGetProcAddress),
// so one binary runs on machines with and without a GPU; it is never unloaded (the
// driver's threads outlive any cuInit caller). Physical chunks are cuMemCreate pinned
// device memory, mapped with cuMemMap (offset zero, the whole chunk) and opened with
// cuMemSetAccess; copies run on dedicated per-device streams (one per direction) into
// pinned host memory, with an event per copy for completion. Errors keep CUDA's own
// names (cuGetErrorName).
//
// gpumem lives in a GPU process it does not own (PyTorch, vLLM), so:
// - Contexts: each device's primary context (the one the runtime API and PyTorch
//   share) is retained the first time that device is used, never at open(), so a busy
//   or exclusive GPU that is never used does not stop the others. Every call runs in
//   the context of the device that owns what it touches (the device named, the
//   reservation's, the chunk's), and the caller's current context is restored after
//   it: the calling thread's torch.cuda.current_device() never changes.
// - Synchronization contract: the backend's copies run on its own non-blocking
//   streams, which do not wait for the client's work. synchronize(device) waits for
//   all work in the device's primary context (cuCtxSynchronize), the client's kernels
//   included; the engine calls it before it backs up memory it handed out and before
//   every unmap of such memory (docs/gpu-contract.md). Clients that use other contexts
//   must synchronize them before asking for a sleep or a free.
// - Sticky errors (CUDA_ERROR_ILLEGAL_ADDRESS and the other "the process must be
//   terminated" codes) are fatal for their device: the first one is kept, and every
//   later call for that device answers it without calling the driver (lost()).

#include <memory>
#include <optional>
#include <string>

#include "gpumem/cuda/cuda_backend_options.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::cuda {

/// The driver library an empty cuda_backend_options::library names:
/// $GPUMEM_CUDA_LIBRARY if set, else libcuda.so.1.
std::string default_driver_library();

class cuda_driver_backend final : public device_backend {
public:
  /// Loads the driver and initialises it; retains no context yet. Without a driver,
  /// the error says so in one line and names the host backend as the alternative.
  static result<std::unique_ptr<cuda_driver_backend>> open(cuda_backend_options options = {});

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
  status map(device_ptr address, std::size_t size, chunk_handle chunk) override;
  status unmap(device_ptr address, std::size_t size) override;
  status set_access(int device, device_ptr address, std::size_t size) override;
  result<pinned_buffer> allocate_pinned(std::size_t size) override;
  result<copy_handle> copy_to_host_async(int device, void* dst, device_ptr src,
                                         std::size_t size) override;
  result<copy_handle> copy_to_device_async(int device, device_ptr dst, const void* src,
                                           std::size_t size) override;
  status synchronize(int device) override;

  /// The sticky error that made `device` unusable, if one did.
  std::optional<device_error> lost(int device) const;

  struct state;  // the loaded driver and per-device contexts and streams

private:
  explicit cuda_driver_backend(std::shared_ptr<state> s);
  // Shared with pinned buffers and copy handles, which may outlive the backend.
  std::shared_ptr<state> state_;
};

} // namespace gpumem::cuda
