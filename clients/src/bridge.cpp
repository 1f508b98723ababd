#include "gpumem/client/detail/bridge.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

namespace gpumem::client::detail {

namespace {

caf::behavior bridge_actor(caf::event_based_actor* self) {
  return {[self](job_ptr& j) { j->start(self); }};
}

} // namespace

bridge::bridge(caf::actor_system& sys) : actor_(sys.spawn(bridge_actor)) {}

bridge::~bridge() {
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

void bridge::submit(job_ptr j) const {
  caf::anon_send(actor_, std::move(j));
}

} // namespace gpumem::client::detail
