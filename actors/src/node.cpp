#include "gpumem/actors/node.hpp"

#include <caf/io/middleman.hpp>
#include <caf/function_view.hpp>
#include <caf/result.hpp>

#include <charconv>
#include <unistd.h>

namespace gpumem::actors {

using namespace messages;

basic_result<listen_address, std::string> parse_listen_address(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return std::string{"expected \"host:port\", got \""} + std::string(text) + "\"";
  auto digits = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || port > 65535)
    return std::string{"bad port in \""} + std::string(text) + "\": expected 0 to 65535";
  listen_address out;
  out.host = std::string(text.substr(0, colon));
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  out.port = static_cast<std::uint16_t>(port);
  out.loopback = out.host == "localhost" || out.host == "::1" || out.host.starts_with("127.");
  return out;
}

messages::node_actor::behavior_type
node(node_pointer self, balancer_actor balancer, std::vector<device_allocator_actor> allocators,
     pressure_monitor_actor monitor, std::chrono::milliseconds request_timeout,
     std::chrono::milliseconds transition_timeout) {
  auto& st = self->state;
  st.balancer = std::move(balancer);
  st.allocators = std::move(allocators);
  st.monitor = std::move(monitor);
  st.info.node_id = caf::to_string(self->system().node());
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0)
    st.info.host = host;
  st.info.pid = static_cast<std::int32_t>(getpid());
  st.info.request_timeout_ms = request_timeout.count();
  st.info.transition_timeout_ms = transition_timeout.count();
  // The devices of the moment, then `reply` with them in the node's info.
  auto with_info = [self, request_timeout](auto rp, auto reply) {
    self->request(self->state.balancer, request_timeout, info_atom::value)
      .then(
        [self, rp, reply](std::vector<device_info>& devices) mutable {
          self->state.info.devices = std::move(devices);
          reply(rp);
        },
        [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
  };
  return {
    [=](info_atom) -> caf::result<node_info> {
      auto rp = self->make_response_promise<node_info>();
      with_info(rp, [self](auto& p) { p.deliver(self->state.info); });
      return rp;
    },
    [=](endpoint_atom)
      -> caf::result<balancer_actor, std::vector<device_allocator_actor>, pressure_monitor_actor,
                     node_info> {
      auto rp = self->make_response_promise<balancer_actor, std::vector<device_allocator_actor>,
                                            pressure_monitor_actor, node_info>();
      with_info(rp, [self](auto& p) {
        const auto& s = self->state;
        p.deliver(s.balancer, s.allocators, s.monitor, s.info);
      });
      return rp;
    },
  };
}

basic_result<std::uint16_t, std::string> publish_on(caf::actor_system& sys,
                                                    const caf::strong_actor_ptr& whom,
                                                    std::set<std::string> interface,
                                                    const std::string& setting,
                                                    const std::string& listen, bool insecure) {
  auto where = parse_listen_address(listen);
  if (!where)
    return setting + ": " + where.error();
  const bool tls = sys.has_openssl_manager();
  if (!where->loopback && !tls && !insecure)
    return setting + ": " + listen
           + " is beyond loopback without TLS, so nothing would authenticate a peer: set "
           + setting.substr(0, setting.rfind('.'))
           + ".certificate, key and ca-file, or start with --insecure";
  if (!sys.has_middleman())
    return std::string{"the actor system has no network layer (load caf::io::middleman)"};
  // What middleman::publish and caf::openssl::publish send, to whichever manager
  // messages::network_manager picks (SO_REUSEADDR: a restarted node takes its port back).
  auto publish = caf::make_function_view(messages::network_manager(sys));
  auto port = publish(caf::publish_atom::value, where->port, whom, std::move(interface),
                      where->host, true);
  if (!port)
    return "cannot listen on " + listen + ": " + sys.render(port.error());
  return *port;
}

basic_result<std::uint16_t, std::string> publish_node(caf::actor_system& sys,
                                                      const node_actor& node,
                                                      const node_options& options,
                                                      bool insecure) {
  return publish_on(sys, caf::actor_cast<caf::strong_actor_ptr>(node), sys.message_types(node),
                    "gpumem.node.listen", options.listen, insecure);
}

} // namespace gpumem::actors
