#include "host_copy_engine.hpp"

#include <cstring>

namespace gpumem::cuda::detail {

struct host_copy_engine::completion_state {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  status outcome;

  void finish(status result) {
    {
      std::lock_guard lock(mutex);
      outcome = std::move(result);
      done = true;
    }
    finished.notify_all();
  }
};

class host_copy_engine::completion final : public copy_completion {
public:
  explicit completion(std::shared_ptr<completion_state> state) : state_(std::move(state)) {}

  bool ready() override {
    std::lock_guard lock(state_->mutex);
    return state_->done;
  }

  status wait() override {
    std::unique_lock lock(state_->mutex);
    state_->finished.wait(lock, [&] { return state_->done; });
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
  }
  wake_.notify_one();
  return std::make_unique<completion>(std::move(state));
}

void host_copy_engine::run() {
  for (;;) {
    job next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;  // stopping, and everything queued has run
      next = std::move(queue_.front());
      queue_.pop_front();
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
