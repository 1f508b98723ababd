#pragma once
// Registers the protocol with an actor system. Call it on EVERY node before
// constructing the actor_system: a type one side does not know arrives as an empty
// message, and the requester sees only sec::unexpected_message.

#include <caf/actor_system_config.hpp>

namespace gpumem::messages {

/// add_message_type for every value type (CAF adds std::vector<T> with each), every
/// actor handle that travels in messages, and the "gpumem" error category's renderer.
void register_protocol(caf::actor_system_config& cfg);

} // namespace gpumem::messages
