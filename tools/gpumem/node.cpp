#include "node.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "cluster.hpp"
#include "gpumem/actors/node.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "listening.hpp"
#include "runtime_options.hpp"

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
  if (options.cluster)
    if (auto at = actors::parse_listen_address(config->cluster.listen); !at)
      throw std::invalid_argument("gpumem.cluster.listen: " + at.error());
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
  if (!announce({"gpumem node", *where, *port, tls,
                 "allocate, free and put devices to sleep", ""},
                options.port_file)) {
    stop_node();
    return 1;
  }
  messages::cluster_actor cluster;
  if (options.cluster) {
    config->cluster.tls = config->node.tls;  // loaded above
    cluster = serve_cluster(sys, config->cluster, options.insecure,
                            {address_of(*where, *port), node}, options.cluster_port_file);
    if (!cluster) {
      stop_node();
      return 1;
    }
  }

  wait_for_stop_signal("gpumem node");
  if (cluster)
    caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown);
  stop_node();
  rt->shutdown();
  spdlog::info("gpumem node: stopped");
  return 0;
}

} // namespace gpumem::tool
