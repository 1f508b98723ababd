#include "gpumem/client/detail/bridge.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

namespace gpumem::client::detail {

namespace {

// A class, not a function: CAF 0.17.6 spawns a function without arguments through a
// null tuple pointer it dereferences (undefined behaviour UBSan reports).
class bridge_actor final : public caf::event_based_actor {
public:
  using caf::event_based_actor::event_based_actor;

  caf::behavior make_behavior() override {
    return {[this](job_ptr& j) { j->start(this); }};
  }
};

} // namespace

bridge::bridge(caf::actor_system& sys) : actor_(sys.spawn<bridge_actor>()) {}

bridge::~bridge() {
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
}

void bridge::submit(job_ptr j) const {
  caf::anon_send(actor_, std::move(j));
}

} // namespace gpumem::client::detail
