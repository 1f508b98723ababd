#include "host_copy_engine.hpp"

#include <atomic>
#include <chrono>
#include <cstring>

namespace gpumem::cuda::detail {

namespace {

// A thread wake-up through a futex costs tens of microseconds on a busy machine, as
// long as copying a megabyte or more. Both sides therefore spin this long for the other
// before they sleep, which keeps small copies near memcpy speed.
constexpr auto spin_limit = std::chrono::microseconds(200);

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins until `ready()` holds or the spin limit passes; whether it held.
template <class Predicate>
bool spin_until(Predicate ready) {
  auto deadline = std::chrono::steady_clock::now() + spin_limit;
  for (int i = 0;; ++i) {
    if (ready())
      return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline)
      return false;
  }
}

} // namespace

struct host_copy_engine::completion_state {
  std::mutex mutex;
  std::condition_variable finished;
  std::atomic<bool> done{false};
  status outcome;

  void finish(status result) {
    {
      std::lock_guard lock(mutex);
      outcome = std::move(result);
      done.store(true, std::memory_order_release);
    }
    finished.notify_all();
  }
};

class host_copy_engine::completion final : public copy_completion {
public:
  explicit completion(std::shared_ptr<completion_state> state) : state_(std::move(state)) {}

  bool ready() override { return state_->done.load(std::memory_order_acquire); }

  status wait() override {
    spin_until([&] { return ready(); });
    std::unique_lock lock(state_->mutex);
    state_->finished.wait(lock, [&] { return state_->done.load(std::memory_order_relaxed); });
    return state_->outcome;
  }

private:
  std::shared_ptr<completion_state> state_;
};

host_copy_engine::host_copy_engine() : worker_([this] { run(); }) {}

host_copy_engine::~host_copy_engine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

copy_handle host_copy_engine::submit(void* dst, const void* src, std::size_t size,
                                     std::optional<device_error> fault) {
  auto state = std::make_shared<completion_state>();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(job{dst, src, size, std::move(fault), state});
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
  return std::make_unique<completion>(std::move(state));
}

void host_copy_engine::run() {
  for (;;) {
    job next;
    spin_until([&] { return queued_.load(std::memory_order_acquire) > 0; });
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;  // stopping, and everything queued has run
      next = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (next.fault) {
      next.done->finish(*next.fault);
      continue;
    }
    std::memcpy(next.dst, next.src, next.size);
    next.done->finish(status{});
  }
}

} // namespace gpumem::cuda::detail
