#include "cluster.hpp"

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>

#include "gpumem/actors/cluster.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "runtime_options.hpp"
#include "whole_file.hpp"

namespace gpumem::tool {

int run_cluster(const cluster_command_options& options) {
  actors::gpumem_config cfg;
  cfg.load<caf::io::middleman>();
  auto config = read_runtime_config(cfg, options.runtime_args);
  if (!config)
    return 0;  // --help or --dump-config printed
  auto where = actors::parse_listen_address(config->cluster.listen);
  if (!where)
    throw std::invalid_argument("gpumem.cluster.listen: " + where.error());
  // One certificate for both sides: the cluster is a client of its nodes and a server
  // of its own clients.
  config->cluster.tls = config->node.tls;
  const bool tls = !config->cluster.tls.empty();
  if (tls)
    if (auto why = messages::use_tls(cfg, config->cluster.tls); !why.empty())
      throw std::invalid_argument("gpumem.node: " + why);

  caf::actor_system sys{cfg};
  auto cluster = actors::spawn_cluster(sys, config->cluster);
  auto stop = [&] { caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown); };
  auto port = actors::publish_cluster(sys, cluster, config->cluster, options.insecure);
  if (!port) {
    spdlog::error("gpumem cluster: {}", port.error());
    stop();
    return 1;
  }
  if (!where->loopback && !tls)
    spdlog::warn("gpumem cluster: listening beyond loopback without TLS (--insecure): any "
                 "peer that reaches {} can put every node to sleep",
                 config->cluster.listen);
  auto host = where->host.find(':') != std::string::npos ? "[" + where->host + "]" : where->host;
  std::printf("gpumem cluster: listening on %s:%u (%s), watching %zu node(s)\n", host.c_str(),
              static_cast<unsigned>(*port), tls ? "mutual TLS" : "no TLS",
              config->cluster.nodes.size());
  std::fflush(stdout);
  if (!options.port_file.empty()
      && !write_whole_file(options.port_file, std::to_string(*port) + "\n")) {
    spdlog::error("gpumem cluster: cannot write the port to '{}'", options.port_file);
    stop();
    return 1;
  }

  boost::asio::io_context io;
  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (!ec)
      spdlog::info("gpumem cluster: signal {}: stopping", signal);
  });
  io.run();  // until the signal
  stop();
  spdlog::info("gpumem cluster: stopped");
  return 0;
}

} // namespace gpumem::tool
