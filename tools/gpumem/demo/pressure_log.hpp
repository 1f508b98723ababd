#pragma once
// The day's pressure subscriber: it prints every event the monitor sends and keeps
// them, so that a step can wait for a device to reach a level.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gpumem/messages/all.hpp"

namespace gpumem::tool::demo {

struct event_log {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<messages::pressure_event> events;

  std::size_t size();
  /// Waits until an event of `device` reaching `level` arrives at index >= `from`.
  bool wait_for(std::int32_t device, messages::pressure_level level, std::size_t from,
                std::chrono::milliseconds limit);
};

messages::pressure_subscriber_actor::behavior_type
pressure_printer(messages::pressure_subscriber_actor::pointer, std::shared_ptr<event_log> log);

} // namespace gpumem::tool::demo
