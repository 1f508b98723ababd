#pragma once
// One thread per emulated device that runs copies in order, the analogue of a GPU's
// copy engine: the caller starts a copy and goes on, then polls or waits.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::cuda::detail {

class host_copy_engine {
public:
  host_copy_engine();
  ~host_copy_engine();  // finishes every queued copy, then joins
  host_copy_engine(const host_copy_engine&) = delete;
  host_copy_engine& operator=(const host_copy_engine&) = delete;

  /// Queues a memcpy; with `fault` set, the copy is skipped and its completion
  /// reports the fault, as an asynchronous CUDA error would be reported.
  copy_handle submit(void* dst, const void* src, std::size_t size,
                     std::optional<device_error> fault);

private:
  struct completion_state;
  struct job {
    void* dst;
    const void* src;
    std::size_t size;
    std::optional<device_error> fault;
    std::shared_ptr<completion_state> done;
  };
  class completion;

  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> queue_;
  std::atomic<std::size_t> queued_{0};  // queue_.size(), readable without the lock
  bool stopping_ = false;
  std::thread worker_;
};

} // namespace gpumem::cuda::detail
