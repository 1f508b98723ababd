#pragma once
// A pressure subscription: a subscriber actor the pressure monitor sends its events
// to. Destroying or cancelling it stops the actor; the monitor, which monitors its
// subscribers, then forgets it.

#include <functional>

#include <caf/actor_system.hpp>

#include "gpumem/messages/actors.hpp"

namespace gpumem::client {

class subscription {
public:
  subscription() = default;
  explicit subscription(messages::pressure_subscriber_actor subscriber)
    : subscriber_(std::move(subscriber)) {}
  subscription(subscription&& other) noexcept : subscriber_(std::move(other.subscriber_)) {
    other.subscriber_ = messages::pressure_subscriber_actor{};
  }
  subscription& operator=(subscription&& other) noexcept;
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { cancel(); }

  /// Stops the events; idempotent.
  void cancel();
  bool active() const noexcept { return static_cast<bool>(subscriber_); }
  const messages::pressure_subscriber_actor& handle() const noexcept { return subscriber_; }

private:
  messages::pressure_subscriber_actor subscriber_;
};

/// Spawns a subscriber that calls `on_event` for each event it receives.
messages::pressure_subscriber_actor
spawn_subscriber(caf::actor_system& sys,
                 std::function<void(const messages::pressure_event&)> on_event);

} // namespace gpumem::client
