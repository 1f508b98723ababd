#include "gpumem/client/subscription.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace gpumem::client {

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    cancel();
    subscriber_ = std::move(other.subscriber_);
    other.subscriber_ = messages::pressure_subscriber_actor{};
  }
  return *this;
}

void subscription::cancel() {
  if (subscriber_) {
    caf::anon_send_exit(subscriber_, caf::exit_reason::user_shutdown);
    subscriber_ = messages::pressure_subscriber_actor{};
  }
}

namespace {

// The callback is a spawn argument rather than a capture: CAF 0.17.6 spawns a function
// without arguments through a null tuple pointer it dereferences (UBSan reports it).
messages::pressure_subscriber_actor::behavior_type
subscriber(messages::pressure_subscriber_actor::pointer,
           std::function<void(const messages::pressure_event&)> on_event) {
  return {[on_event = std::move(on_event)](const messages::pressure_event& e) { on_event(e); }};
}

} // namespace

messages::pressure_subscriber_actor
spawn_subscriber(caf::actor_system& sys,
                 std::function<void(const messages::pressure_event&)> on_event) {
  return sys.spawn(subscriber, std::move(on_event));
}

} // namespace gpumem::client
