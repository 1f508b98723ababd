#pragma once
// A one-shot handoff of a result from the bridge's CAF thread to a waiting caller.
// The caller first polls for a few microseconds (an answer usually comes that fast,
// and a condition variable's wake-up costs more than the whole round trip), then
// sleeps on a condition variable until the value comes or its deadline passes.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "gpumem/client/result.hpp"

namespace gpumem::client::detail {

template <class T>
class handoff {
public:
  void complete(result<T> r) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (value_)
        return;
      value_.emplace(std::move(r));
      ready_.store(true, std::memory_order_release);
    }
    ready_cv_.notify_one();
  }

  /// The value, or nullopt when `deadline` passed first.
  std::optional<result<T>> wait(std::chrono::steady_clock::time_point deadline) {
    using clock = std::chrono::steady_clock;
    const auto spin_until = clock::now() + std::chrono::microseconds{20};
    while (!ready_.load(std::memory_order_acquire) && clock::now() < spin_until)
      std::this_thread::yield();
    std::unique_lock<std::mutex> lock{mutex_};
    if (!ready_cv_.wait_until(lock, deadline, [this] { return value_.has_value(); }))
      return std::nullopt;
    return std::move(value_);
  }

private:
  std::mutex mutex_;
  std::condition_variable ready_cv_;
  std::atomic<bool> ready_{false};
  std::optional<result<T>> value_;
};

} // namespace gpumem::client::detail
