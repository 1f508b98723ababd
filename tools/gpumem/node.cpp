#include "node.hpp"

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>

#include "gpumem/actors/node.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "runtime_options.hpp"
#include "whole_file.hpp"

namespace gpumem::tool {

int run_node(const node_command_options& options) {
  actors::gpumem_config cfg;
  cfg.load<caf::io::middleman>();
  auto config = read_runtime_config(cfg, options.runtime_args);
  if (!config)
    return 0;  // --help or --dump-config printed
  // A listen address that is not host:port is refused before anything starts.
  auto where = actors::parse_listen_address(config->node.listen);
  if (!where)
    throw std::invalid_argument("gpumem.node.listen: " + where.error());
  const bool tls = !config->node.tls.empty();
  if (tls) {
    if (auto why = messages::use_tls(cfg, config->node.tls); !why.empty())
      throw std::invalid_argument("gpumem.node: " + why);
  }

  caf::actor_system sys{cfg};
  auto made = actors::runtime::create(sys, *config);
  if (!made) {
    spdlog::error("gpumem node: cannot start the runtime: {}", made.error().to_string());
    return 1;
  }
  auto rt = std::move(made).value();
  spdlog::info("runtime: {}; {} device(s)", rt->backend_reason(), rt->devices().size());
  const auto& b = config->balancer;
  auto node = sys.spawn(actors::node, rt->balancer(), rt->allocators(), rt->monitor(),
                        b.request_timeout, b.transition_timeout);
  auto stop_node = [&] { caf::anon_send_exit(node, caf::exit_reason::user_shutdown); };

  auto port = actors::publish_node(sys, node, config->node, options.insecure);
  if (!port) {
    spdlog::error("gpumem node: {}", port.error());
    stop_node();
    return 1;
  }
  if (!where->loopback && !tls)
    spdlog::warn("gpumem node: listening beyond loopback without TLS (--insecure): any peer "
                 "that reaches {} can allocate, free and put devices to sleep",
                 config->node.listen);
  auto host = where->host.find(':') != std::string::npos ? "[" + where->host + "]" : where->host;
  std::printf("gpumem node: listening on %s:%u (%s)\n", host.c_str(),
              static_cast<unsigned>(*port), tls ? "mutual TLS" : "no TLS");
  std::fflush(stdout);
  if (!options.port_file.empty()
      && !write_whole_file(options.port_file, std::to_string(*port) + "\n")) {
    spdlog::error("gpumem node: cannot write the port to '{}'", options.port_file);
    stop_node();
    return 1;
  }

  boost::asio::io_context io;
  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec)
      spdlog::info("gpumem node: signal {}: stopping", signal);
  });
  io.run();  // until the signal
  stop_node();
  rt->shutdown();
  spdlog::info("gpumem node: stopped");
  return 0;
}

} // namespace gpumem::tool
