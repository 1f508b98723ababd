// gpumem ctl --node and --cluster: status, stats, sleep and wake of one gpumem node, or
// of a cluster's nodes, over CAF's network layer (over mutual TLS with --certificate,
// --key and --ca-file).

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <variant>

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

/// Asks `who` by the deadline of --timeout; the answer, or the exit code of the error
/// (printed): a gpumem error is the peer's refusal, anything else no answer.
template <class T, class Handle, class... Ts>
std::variant<T, int> ask(caf::actor_system& sys, const Handle& who, const ctl_options& o,
                         Ts&&... xs) {
  caf::scoped_actor self{sys, true};
  std::variant<T, int> out{ctl_unreachable_exit};
  self->request(who, o.timeout, std::forward<Ts>(xs)...)
    .receive([&](T& answer) { out = std::move(answer); },
             [&](caf::error& e) {
               if (auto code = gpumem_code(e)) {
                 std::fprintf(stderr, "gpumem ctl %s: %s: %s\n", o.command.c_str(),
                              to_string(*code), error_message(e).c_str());
                 out = ctl_refused_exit;
               } else {
                 std::fprintf(stderr, "gpumem ctl %s: no answer: %s\n", o.command.c_str(),
                              sys.render(e).c_str());
               }
             });
  return out;
}

/// Prints the JSON: 0, or ctl_refused_exit where stdout fails.
int print(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(2).c_str());
  return std::fflush(stdout) == 0 ? 0 : ctl_refused_exit;
}

template <class T, class Handle, class... Ts>
int ask_and_print(caf::actor_system& sys, const Handle& who, const ctl_options& o, Ts&&... xs) {
  auto answer = ask<T>(sys, who, o, std::forward<Ts>(xs)...);
  if (auto* rc = std::get_if<int>(&answer))
    return *rc;
  return print(to_json(std::get<T>(answer)));
}

int ctl_node(caf::actor_system& sys, const client::remote_node& node, const ctl_options& o) {
  const auto& balancer = node.endpoint.balancer;
  if (o.command == "status") {
    auto status = ask<balancer_status>(sys, balancer, o, status_atom::value);
    if (auto* rc = std::get_if<int>(&status))
      return *rc;
    auto devices = ask<std::vector<device_info>>(sys, balancer, o, info_atom::value);
    if (auto* rc = std::get_if<int>(&devices))
      return *rc;
    return print(to_json(std::get<balancer_status>(status),
                         std::get<std::vector<device_info>>(devices)));
  }
  if (o.command == "stats")
    return ask_and_print<cluster_statistics>(sys, balancer, o, stats_atom::value);
  if (o.command == "sleep")
    return ask_and_print<std::vector<transition_report>>(
      sys, balancer, o, sleep_all_atom::value, sleep_policy::at_level(o.level, o.tags));
  return ask_and_print<std::vector<transition_report>>(sys, balancer, o, wake_all_atom::value,
                                                       o.tags);
}

int ctl_cluster(caf::actor_system& sys, const cluster_actor& cluster, const ctl_options& o) {
  if (o.command == "status")
    return ask_and_print<cluster_status>(sys, cluster, o, status_atom::value);
  if (o.command == "stats")
    return ask_and_print<nodes_statistics>(sys, cluster, o, stats_atom::value);
  collective_request r;
  r.kind = o.command == "sleep" ? transition_kind::sleep : transition_kind::wake;
  r.policy = sleep_policy::at_level(o.level, o.tags);
  r.tags = o.tags;
  r.nodes = o.nodes;
  return ask_and_print<std::vector<node_transition>>(sys, cluster, o, collective_atom::value, r);
}

} // namespace

int run_ctl_remote(const ctl_options& o) {
  const bool cluster = !o.cluster.empty();
  const char* flag = cluster ? "--cluster" : "--node";
  const auto& address = cluster ? o.cluster : o.node;
  if (o.command != "status" && o.command != "stats" && o.command != "sleep"
      && o.command != "wake") {
    std::fprintf(stderr, "gpumem ctl %s: %s goes to a node's HTTP control plane (--url); over "
                         "CAF a node or cluster answers status, stats, sleep and wake\n",
                 flag, o.command.c_str());
    return ctl_usage_exit;
  }
  if (!cluster && !o.nodes.empty()) {
    std::fprintf(stderr, "gpumem ctl: --nodes chooses nodes of a --cluster\n");
    return ctl_usage_exit;
  }
  auto where = actors::parse_listen_address(address);
  if (!where || where->port == 0) {
    std::fprintf(stderr, "gpumem ctl: %s expects host:port, got '%s'\n", flag, address.c_str());
    return ctl_usage_exit;
  }
  ctl_config cfg;
  if (!o.tls.empty())
    if (auto why = use_tls(cfg, o.tls); !why.empty()) {
      std::fprintf(stderr, "gpumem ctl: %s\n", why.c_str());
      return ctl_usage_exit;
    }
  caf::actor_system sys{cfg};
  const auto deadline = std::chrono::duration_cast<std::chrono::milliseconds>(o.timeout);
  if (cluster) {
    auto reached = client::connect_cluster(sys, where->host, where->port, deadline);
    if (!reached) {
      std::fprintf(stderr, "gpumem ctl: %s\n", reached.error().to_string().c_str());
      return ctl_unreachable_exit;
    }
    return ctl_cluster(sys, *reached, o);
  }
  auto reached = client::connect_node(sys, where->host, where->port, deadline);
  if (!reached) {
    std::fprintf(stderr, "gpumem ctl: %s\n", reached.error().to_string().c_str());
    return ctl_unreachable_exit;
  }
  return ctl_node(sys, *reached, o);
}

} // namespace gpumem::tool
