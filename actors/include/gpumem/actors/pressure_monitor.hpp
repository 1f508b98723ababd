#pragma once
// The pressure monitor: one actor for the whole runtime that polls every device's
// memory (device_backend::memory(): on a GPU its free figure includes what other
// processes hold) and tells its subscribers when a device's pressure level changes
// (messages::pressure_monitor_actor).
//
// Levels, from the fraction of the device in use, u = (total - free) / total:
//   a level is entered when u >= its threshold, and left only when u falls below
//   threshold - hysteresis, so usage that wobbles around a threshold changes the
//   level once, not at every poll. critical implies being above warning: leaving
//   critical lands on warning while u >= warning - hysteresis, else on normal.
// Each period (a private poll message the actor sends itself, delayed) it reads every
// device; every level change is sent as a pressure_event {device, available, total,
// level, previous, time (system clock at the reading)} to every subscriber of that
// device, in subscription order.
// A failed read is logged (once per run of failures, and its recovery) and keeps the
// device's previous level and reading; it never stops the monitor.
// A subscriber hears of every device (subscribe with no device, or device -1) or of the
// devices it named, one per subscribe (a device allocator: its own; a device the
// monitor does not watch is refused with unknown_device). Subscribers are monitored:
// one that dies is removed; unsubscribe removes it from every device. A subscriber is
// told at once of each device it newly covers whose level is not normal (the latest
// reading, as `pressure` gives it), so one that joins under pressure does not wait for
// the next change.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/messages/actors.hpp"

namespace gpumem::actors {

/// The monitor's period and thresholds (the reactions are the subscribers'); the
/// one home of the thresholds' defaults.
struct pressure_settings {
  /// Between two polls; must be positive.
  std::chrono::nanoseconds period = std::chrono::milliseconds{100};
  double warning = 0.80;     // fraction in use; 0 < warning < critical
  double critical = 0.92;    // critical <= 1
  double hysteresis = 0.05;  // 0 <= hysteresis < warning
};

/// Why these settings cannot run; empty when they can.
std::string validate(const pressure_settings& settings);

/// The level at usage `used_fraction` for a device now at `current`, with hysteresis.
messages::pressure_level next_pressure_level(messages::pressure_level current,
                                             double used_fraction,
                                             const pressure_settings& settings) noexcept;

struct pressure_monitor_state {
  static inline const char* name = "gpumem.pressure_monitor";

  /// One watched device.
  struct device_reading {
    /// The latest good reading (level == previous unless that poll changed it); its
    /// device is set, and everything else stays zero/normal until a read succeeds.
    messages::pressure_event latest;
    bool failing = false;          // the last read failed
    std::uint64_t failures = 0;    // failed reads in all
  };

  /// One subscriber and the devices it hears of.
  struct subscriber {
    messages::pressure_subscriber_actor handle;
    bool all_devices = false;
    std::vector<std::int32_t> devices;  // when not all_devices
    bool covers(std::int32_t device) const;
  };

  cuda::device_backend* backend = nullptr;  // not owned
  pressure_settings settings;
  std::vector<device_reading> devices;      // in the order given at spawn
  std::vector<subscriber> subscribers;      // subscription order
  std::uint64_t polls = 0;
  std::uint64_t events_sent = 0;  // one per event per subscriber it was sent to
};

using pressure_monitor_pointer =
  messages::pressure_monitor_actor::stateful_pointer<pressure_monitor_state>;

/// The actor's function: spawn with sys.spawn(pressure_monitor, &backend, devices,
/// settings). `backend` must not be null; it is not owned and must outlive the actor
/// (a pointer, not a reference: CAF's spawn passes its arguments on as rvalues). `devices`
/// must be non-empty (a monitor watching nothing is a configuration mistake), hold no
/// duplicates, and name devices the backend has; `settings` must pass validate().
/// Otherwise the actor quits at once with invalid_config (and logs why).
/// The first reading is taken at spawn (a failed one leaves that device's reading zero
/// and normal); polling follows every settings.period. The pending poll keeps the actor
/// alive: stop it with an exit message (send_exit), as the runtime does at shutdown.
messages::pressure_monitor_actor::behavior_type
pressure_monitor(pressure_monitor_pointer self, cuda::device_backend* backend,
                 std::vector<std::int32_t> devices, pressure_settings settings);

} // namespace gpumem::actors
