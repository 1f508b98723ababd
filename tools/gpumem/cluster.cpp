#include "cluster.hpp"

#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <set>
#include <stdexcept>
#include <string>

#include "gpumem/actors/runtime_config.hpp"
#include "listening.hpp"
#include "runtime_options.hpp"

namespace gpumem::tool {

messages::cluster_actor serve_cluster(caf::actor_system& sys,
                                      const actors::cluster_options& options, bool insecure,
                                      actors::local_node local, const std::string& port_file) {
  // Checked by the caller before the system started; parsed again for the announcement.
  auto where = actors::parse_listen_address(options.listen);
  // The cluster keeps one member per address: this node may be listed too.
  std::set<std::string> addresses(options.nodes.begin(), options.nodes.end());
  if (local.node)
    addresses.insert(local.address);
  const auto watched = addresses.size();
  auto cluster = actors::spawn_cluster(sys, options, std::move(local));
  auto port = actors::publish_cluster(sys, cluster, options, insecure);
  if (!port)
    spdlog::error("gpumem cluster: {}", port.error());
  const auto detail = ", watching " + std::to_string(watched) + " node(s)";
  if (!port || !where
      || !announce({"gpumem cluster", *where, *port, !options.tls.empty(),
                    "put every node to sleep", detail},
                   port_file)) {
    caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
    return {};
  }
  return cluster;
}

int run_cluster(const cluster_command_options& options) {
  actors::gpumem_config cfg;
  cfg.load<caf::io::middleman>();
  auto config = read_runtime_config(cfg, options.runtime_args);
  if (!config)
    return 0;  // --help or --dump-config printed
  if (auto where = actors::parse_listen_address(config->cluster.listen); !where)
    throw std::invalid_argument("gpumem.cluster.listen: " + where.error());
  // One certificate for both sides: the cluster is a client of its nodes and a server
  // of its own clients.
  config->cluster.tls = config->node.tls;
  if (!config->cluster.tls.empty())
    if (auto why = messages::use_tls(cfg, config->cluster.tls); !why.empty())
      throw std::invalid_argument("gpumem.node: " + why);

  caf::actor_system sys{cfg};
  auto cluster = serve_cluster(sys, config->cluster, options.insecure, {}, options.port_file);
  if (!cluster)
    return 1;
  wait_for_stop_signal("gpumem cluster");
  caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
  spdlog::info("gpumem cluster: stopped");
  return 0;
}

} // namespace gpumem::tool
