#include "gpumem/actors/runtime.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "gpumem/actors/balancer.hpp"
#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/actors/pressure_monitor.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/backend_factory.hpp"

namespace gpumem::actors {

const char* to_string(runtime_error::stage where) noexcept {
  switch (where) {
    case runtime_error::stage::backend: return "backend";
    case runtime_error::stage::engine: return "engine";
    case runtime_error::stage::actors: return "actors";
  }
  return "unknown";
}

std::string runtime_error::to_string() const {
  std::string result = actors::to_string(where);
  if (device >= 0)
    result += " (device " + std::to_string(device) + ")";
  return result + ": " + message;
}

runtime::runtime(caf::actor_system& sys, runtime_config config, runtime_options options)
  : sys_(sys), config_(std::move(config)), options_(options) {}

runtime::~runtime() {
  shutdown();
}

runtime_result runtime::create(caf::actor_system& sys, const runtime_config& config,
                               runtime_options options) {
  using stage = runtime_error::stage;
  if (options.timeout <= std::chrono::milliseconds::zero())
    options.timeout = std::chrono::milliseconds{10000};
  // The configured level holds for everything that follows, start-up included.
  spdlog::set_level(config.log_level);
  std::unique_ptr<runtime> rt(new runtime(sys, config, options));

  // The device layer.
  auto choice = cuda::make_backend(to_string(config.backend), config.host_backend_config());
  if (!choice)
    return runtime_error{stage::backend, -1,
                         std::string("cannot create the '") + to_string(config.backend) +
                           "' backend: " + choice.error().to_string()};
  rt->backend_ = std::move(choice->backend);
  rt->backend_reason_ = std::move(choice->reason);
  auto count = rt->backend_->device_count();
  if (!count)
    return runtime_error{stage::backend, -1,
                         "cannot count the devices: " + count.error().to_string()};
  if (*count <= 0)
    return runtime_error{stage::backend, -1,
                         "the " + std::string(rt->backend_->name()) + " backend has no devices"};
  spdlog::debug("gpumem runtime: {} ({} device(s))", rt->backend_reason_, *count);

  // One engine per device, all made before any actor starts. Declared after `rt`, so
  // on an early return they are destroyed before the backend they use.
  std::vector<std::unique_ptr<core::engine>> engines;
  for (int d = 0; d < *count; ++d) {
    auto made = core::engine::create(*rt->backend_, config.engine_config_for(d));
    if (!made)
      return runtime_error{stage::engine, d, made.error().to_string()};
    engines.push_back(std::move(made).value());
  }

  // From here on the destructor (shutdown) stops whatever was spawned.
  rt->running_ = true;
  auto allocator_options = config.allocator;
  allocator_options.backend = rt->backend_.get();
  // The allocators offload down to the monitor's thresholds.
  allocator_options.pressure.critical = config.pressure.critical;
  allocator_options.pressure.hysteresis = config.pressure.hysteresis;
  for (int d = 0; d < *count; ++d)
    rt->allocators_.push_back(sys.spawn(actors::device_allocator, std::move(engines[d]),
                                        std::int32_t{d}, allocator_options));
  engines.clear();

  rt->balancer_ = sys.spawn(actors::balancer, config.balancer);

  std::vector<std::int32_t> numbers;
  for (int d = 0; d < *count; ++d)
    numbers.push_back(d);
  rt->monitor_ = sys.spawn(actors::pressure_monitor, rt->backend_.get(), std::move(numbers),
                           config.pressure);

  caf::scoped_actor self{sys, true};
  const auto timeout = caf::duration{options.timeout};
  std::optional<runtime_error> failed;
  for (int d = 0; d < *count && !failed; ++d) {
    self->request(rt->balancer_, timeout, messages::add_device_atom::value, rt->allocators_[d])
      .receive([&](messages::device_info& info) { rt->devices_.push_back(std::move(info)); },
               [&](caf::error& e) {
                 failed = runtime_error{stage::actors, d,
                                        "the balancer did not add the device: " + sys.render(e)};
               });
  }
  // Each allocator hears of its own device only (device -1: the balancer, of all).
  auto subscribe = [&](const messages::pressure_subscriber_actor& who, std::int32_t device,
                       const char* what) {
    if (failed)
      return;
    self->request(rt->monitor_, timeout, messages::subscribe_atom::value, who, device)
      .receive([](messages::ok_atom) {},
               [&](caf::error& e) {
                 failed = runtime_error{stage::actors, device,
                                        std::string("cannot subscribe the ") + what +
                                          " to the pressure monitor: " + sys.render(e)};
               });
  };
  for (int d = 0; d < *count; ++d)
    subscribe(caf::actor_cast<messages::pressure_subscriber_actor>(rt->allocators_[d]), d,
              "device allocator");
  subscribe(caf::actor_cast<messages::pressure_subscriber_actor>(rt->balancer_), -1, "balancer");
  if (failed)
    return std::move(*failed);  // ~runtime stops what started
  return runtime_result{std::move(rt)};
}

bool runtime::shutdown() {
  if (!running_)
    return clean_;
  running_ = false;

  caf::scoped_actor self{sys_, true};
  std::size_t pending = 0;
  auto stop = [&](const auto& handle) {
    if (!handle)
      return;
    self->monitor(handle);
    self->send_exit(handle, caf::exit_reason::user_shutdown);
    ++pending;
  };
  // The front door first, so no new work reaches the allocators.
  stop(balancer_);
  stop(monitor_);
  for (const auto& a : allocators_)
    stop(a);

  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  bool timed_out = false;
  while (pending > 0 && !timed_out) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) {
      timed_out = true;
      break;
    }
    self->receive([&](caf::down_msg&) { --pending; },
                  caf::after(left) >> [&] { timed_out = true; });
  }

  balancer_ = nullptr;
  monitor_ = nullptr;
  allocators_.clear();
  if (timed_out) {
    // An actor may still use its engine, and the engine the backend: never destroy
    // the backend under it.
    spdlog::error("gpumem runtime: {} actor(s) did not stop within {} ms; the device "
                  "backend is left allocated",
                  pending, options_.timeout.count());
    (void)backend_.release();
    clean_ = false;
    return false;
  }
  return true;
}

} // namespace gpumem::actors
