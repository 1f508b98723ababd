// The runtime gpumem_start* starts: its configuration read as the gpumem command reads
// one, its actor system, the runtime. The only file of the C interface that knows the
// actors.

#include <caf/actor_system.hpp>

#include "c_state.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/messages/register.hpp"

namespace gpumem::c_abi {

class hosted_runtime {
public:
  actors::gpumem_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<actors::runtime> rt;

  ~hosted_runtime() {
    rt.reset();   // stops the actors before the system waits for them
    sys.reset();
  }
};

started start_hosted(const std::vector<std::string>& args, std::string& error) {
  hosted_ptr h{new hosted_runtime};
  messages::register_protocol(h->cfg);
  auto parsed = h->cfg.parse_command_line(args, nullptr);
  if (!parsed) {
    error = parsed.error().message;
    return {};
  }
  if (*parsed == actors::gpumem_config::parse_outcome::exit) {
    error = "--help and --dump-config print text and start nothing";
    return {};
  }
  auto config = h->cfg.to_runtime_config();
  if (!config) {
    error = config.error().message;
    return {};
  }
  h->sys = std::make_unique<caf::actor_system>(h->cfg);
  auto made = actors::runtime::create(*h->sys, *config);
  if (!made) {
    error = made.error().to_string();
    return {};
  }
  h->rt = std::move(made).value();
  started s;
  s.endpoint = client::local_endpoint(*h->sys, *h->rt);
  s.devices = static_cast<int>(h->rt->devices().size());
  s.runtime = std::move(h);
  return s;
}

void hosted_deleter::operator()(hosted_runtime* runtime) const {
  delete runtime;
}

} // namespace gpumem::c_abi
