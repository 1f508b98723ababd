// gpumem ctl --cluster: status, stats, sleep and wake of a gpumem cluster over CAF's
// network layer (over TLS where [gpumem.node] names files: one certificate per host).

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "ctl.hpp"
#include "gpumem/actors/node.hpp"
#include "gpumem/client/remote_node.hpp"
#include "gpumem/messages/json.hpp"
#include "gpumem/messages/register.hpp"

namespace gpumem::tool {

namespace {

using namespace messages;

struct ctl_config : caf::actor_system_config {
  ctl_config() {
    load<caf::io::middleman>();
    register_protocol(*this);
    set("logger.console-verbosity", caf::atom("quiet"));
  }
};

/// Asks the cluster and prints the answer's JSON: 0, or the exit code of its error.
template <class T, class... Ts>
int ask(caf::actor_system& sys, const cluster_actor& cluster, const ctl_options& o, Ts&&... xs) {
  caf::scoped_actor self{sys, true};
  int rc = 0;
  self->request(cluster, o.timeout, std::forward<Ts>(xs)...)
    .receive(
      [&](T& answer) {
        std::printf("%s\n", to_json(answer).dump(2).c_str());
        rc = std::fflush(stdout) == 0 ? 0 : ctl_refused_exit;
      },
      [&](caf::error& e) {
        // The cluster's own answer (a node it lost included) is a refusal; no answer
        // from the cluster itself is unreachable.
        if (auto code = gpumem_code(e)) {
          std::fprintf(stderr, "gpumem ctl %s: %s: %s\n", o.command.c_str(), to_string(*code),
                       error_message(e).c_str());
          rc = ctl_refused_exit;
        } else {
          std::fprintf(stderr, "gpumem ctl %s: no answer from the cluster: %s\n",
                       o.command.c_str(), sys.render(e).c_str());
          rc = ctl_unreachable_exit;
        }
      });
  return rc;
}

} // namespace

int run_ctl_cluster(const ctl_options& o) {
  if (o.command != "status" && o.command != "stats" && o.command != "sleep"
      && o.command != "wake") {
    std::fprintf(stderr, "gpumem ctl --cluster: %s goes to one node's control plane (--url); a "
                         "cluster answers status, stats, sleep and wake\n", o.command.c_str());
    return ctl_usage_exit;
  }
  auto where = actors::parse_listen_address(o.cluster);
  if (!where || where->port == 0) {
    std::fprintf(stderr, "gpumem ctl: --cluster expects host:port, got '%s'\n", o.cluster.c_str());
    return ctl_usage_exit;
  }
  ctl_config cfg;
  if (!o.tls.empty())
    if (auto why = use_tls(cfg, o.tls); !why.empty()) {
      std::fprintf(stderr, "gpumem ctl: %s\n", why.c_str());
      return ctl_usage_exit;
    }
  caf::actor_system sys{cfg};
  auto cluster = client::connect_cluster(sys, where->host, where->port,
                                         std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout));
  if (!cluster) {
    std::fprintf(stderr, "gpumem ctl: %s\n", cluster.error().to_string().c_str());
    return ctl_unreachable_exit;
  }
  if (o.command == "status")
    return ask<cluster_status>(sys, *cluster, o, status_atom::value);
  if (o.command == "stats")
    return ask<nodes_statistics>(sys, *cluster, o, stats_atom::value);
  collective_request r;
  r.kind = o.command == "sleep" ? transition_kind::sleep : transition_kind::wake;
  r.policy = sleep_policy::at_level(o.level, o.tags);
  r.tags = o.tags;
  r.nodes = o.nodes;
  return ask<std::vector<node_transition>>(sys, *cluster, o, collective_atom::value, r);
}

} // namespace gpumem::tool
