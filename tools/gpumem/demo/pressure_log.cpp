#include "pressure_log.hpp"

#include <spdlog/spdlog.h>

#include "report.hpp"

namespace gpumem::tool::demo {

using namespace gpumem::messages;

std::size_t event_log::size() {
  std::lock_guard<std::mutex> guard(mutex);
  return events.size();
}

bool event_log::wait_for(std::int32_t device, pressure_level level, std::size_t from,
                         std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock(mutex);
  return changed.wait_for(lock, limit, [&] {
    for (auto i = from; i < events.size(); ++i)
      if (events[i].device == device && events[i].level == level)
        return true;
    return false;
  });
}

pressure_subscriber_actor::behavior_type pressure_printer(pressure_subscriber_actor::pointer,
                                                          std::shared_ptr<event_log> log) {
  return {[log](const pressure_event& e) {
    double used = e.total_bytes > 0
                    ? 1.0 - static_cast<double>(e.available_bytes) / static_cast<double>(e.total_bytes)
                    : 0.0;
    spdlog::info("  [monitor] device {}: pressure {} -> {} ({:.1f}% used, {} available of {})",
                 e.device, to_string(e.previous), to_string(e.level), used * 100,
                 mib(e.available_bytes), mib(e.total_bytes));
    std::lock_guard<std::mutex> guard(log->mutex);
    log->events.push_back(e);
    log->changed.notify_all();
  }};
}

} // namespace gpumem::tool::demo
