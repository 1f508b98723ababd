#pragma once
// The runtime: everything one process needs to serve the protocol, started from a
// checked runtime_config inside a caller's actor system.
//
//   auto rt = runtime::create(sys, config);   // backend, engines, actors
//   if (!rt) { log(rt.error().to_string()); return 1; }
//   auto balancer = (*rt)->balancer();         // the front door for clients
//   ...
//   (*rt)->shutdown();                         // also done by the destructor
//
// create() first sets spdlog's global level to config.log_level (so the configured
// level holds for the whole process from then on; set another after create() to
// override it). It makes the device backend (cuda::make_backend with the config's
// backend kind and host emulation), one engine per device, one device allocator per
// device (config.allocator, offloading down to config.pressure's thresholds), a
// balancer routing over all of them (add_device answered by each before create
// returns), and a pressure monitor over every device, each allocator subscribed to
// its own device's events and the balancer to every device's. Failures are values
// (runtime_error), never exceptions.
//
// shutdown() sends every spawned actor an exit message and waits (with a timeout) for
// each to terminate, so ~actor_system never waits on an actor of ours. The backend is
// owned here and outlives the engines and the actors: if an actor fails to terminate
// in time, the backend is deliberately leaked rather than destroyed under it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::actors {

/// Why the runtime could not start.
struct runtime_error {
  enum class stage {
    backend,  // make_backend failed, or the backend has no devices
    engine,   // engine::create failed on a device
    actors,   // an actor did not start (add_device or subscribe failed or timed out)
  };
  stage where;
  std::int32_t device = -1;  // the device concerned; -1 where none
  std::string message;       // the whole line for the user

  /// "engine (device 1): invalid_config: ..." for logs and test output.
  std::string to_string() const;
};

const char* to_string(runtime_error::stage where) noexcept;

struct runtime_options {
  /// Each start-up request (add_device, subscribe) and each actor's termination at
  /// shutdown waits at most this long.
  std::chrono::milliseconds timeout{10000};
};

class runtime;
using runtime_result = basic_result<std::unique_ptr<runtime>, runtime_error>;

class runtime {
public:
  /// Starts everything; `config` must have passed to_runtime_config(). `sys` must
  /// outlive the runtime. Sets spdlog's global level to config.log_level.
  static runtime_result create(caf::actor_system& sys, const runtime_config& config,
                               runtime_options options = {});

  /// shutdown().
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Stops every actor and waits for each (up to options.timeout apiece, together at
  /// most that long). Idempotent. Returns false if an actor did not terminate in time
  /// (the backend is then leaked, not destroyed under a live actor).
  bool shutdown();
  bool running() const noexcept { return running_; }

  /// The balancer: routes over every device allocator.
  const messages::balancer_actor& balancer() const noexcept { return balancer_; }
  /// One allocator per device, in device order (index == device number).
  const std::vector<messages::device_allocator_actor>& allocators() const noexcept {
    return allocators_;
  }
  const messages::pressure_monitor_actor& monitor() const noexcept { return monitor_; }
  /// What each device reported when it was added to the balancer.
  const std::vector<messages::device_info>& devices() const noexcept { return devices_; }

  /// The device layer (alive as long as the runtime).
  cuda::device_backend& backend() noexcept { return *backend_; }
  /// One line: which backend was chosen and why.
  const std::string& backend_reason() const noexcept { return backend_reason_; }
  const runtime_config& config() const noexcept { return config_; }

private:
  runtime(caf::actor_system& sys, runtime_config config, runtime_options options);

  caf::actor_system& sys_;
  runtime_config config_;
  runtime_options options_;
  std::unique_ptr<cuda::device_backend> backend_;
  std::string backend_reason_;
  std::vector<messages::device_allocator_actor> allocators_;
  std::vector<messages::device_info> devices_;
  messages::balancer_actor balancer_;
  messages::pressure_monitor_actor monitor_;
  bool running_ = false;
  bool clean_ = true;  // every actor stopped in time at shutdown
};

} // namespace gpumem::actors
