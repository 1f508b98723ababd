// gpumem_cluster_bench: what distribution costs, measured over `gpumem node` processes
// on this machine's loopback, each figure beside its baseline from the same run:
//  1. an allocate + free round trip through a blocking client: to a runtime in this
//     process, to a node in the clear, and to a node over mutual TLS (certificates
//     made with the openssl command);
//  2. a collective sleep + wake (level 1, 8 MiB of weights per node) through a cluster
//     in this process over 1, 2, 4 and 8 nodes, as a ratio to 1 node;
//  3. the time from a node's SIGKILL (its link closes) and from its SIGSTOP (only the
//     heartbeat's deadline can tell) to the cluster's status saying it is lost.
// Usage: gpumem_cluster_bench PATH_TO_GPUMEM [ROUNDS]. Exit 1 when something fails.

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gpumem/actors/cluster.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/actors/scheduler.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/client/remote_node.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/register.hpp"
#include "gpumem/messages/tls.hpp"
#include "support/node_processes.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& why) { throw std::runtime_error(why); }


/// One `gpumem node` of `tool`, quiet but for warnings.
class node_process : public test::node_process_child {
public:
  explicit node_process(const std::string& tool, std::vector<std::string> extra = {})
    : node_process_child(tool, with_quiet_log(std::move(extra))) {}

private:
  static std::vector<std::string> with_quiet_log(std::vector<std::string> extra) {
    extra.push_back("--gpumem.log-level=warn");
    return extra;
  }
};

struct networked_config : caf::actor_system_config {
  explicit networked_config(const tls_files& tls = {}) {
    actors::use_prompt_wakeups(*this);  // as gpumem_config and the clients' examples do
    load<caf::io::middleman>();
    register_protocol(*this);
    if (!tls.empty())
      if (auto why = use_tls(*this, tls); !why.empty())
        fail("use_tls: " + why);
  }
};

/// Mean microseconds of an allocate + free pair through `c`.
double round_trip_us(client::blocking_client& c, int rounds) {
  for (int i = 0; i < rounds / 10 + 1; ++i) {  // warm-up: connections, pools
    auto r = c.allocate(64 * KiB, "kv_cache");
    if (!r.ok() || !c.deallocate(*r).ok())
      fail("warm-up allocate/free failed");
  }
  const auto start = clock_type::now();
  for (int i = 0; i < rounds; ++i) {
    auto r = c.allocate(64 * KiB, "kv_cache");
    if (!r.ok())
      fail("allocate: " + r.error().to_string());
    if (!c.deallocate(*r).ok())
      fail("free failed");
  }
  return std::chrono::duration<double, std::micro>(clock_type::now() - start).count() / rounds;
}

/// round_trip_us to `node`, from an actor system of its own (over TLS with `files`).
double remote_round_trip_us(const node_process& node, const tls_files& files, int rounds) {
  networked_config cfg{files};
  caf::actor_system sys{cfg};
  auto remote = client::connect_node(sys, "127.0.0.1", node.port());
  if (!remote)
    fail(remote.error().to_string());
  client::blocking_client c{remote->endpoint};
  return round_trip_us(c, rounds);
}

void round_trips(const std::string& tool, int rounds) {
  // In this process: a runtime with the nodes' layout.
  networked_config local_cfg;
  caf::actor_system local_sys{local_cfg};
  actors::runtime_config config;
  config.host.devices = 1;
  config.host.capacity = 128 * MiB;
  auto rt = actors::runtime::create(local_sys, config);
  if (!rt)
    fail("runtime::create: " + rt.error().to_string());
  client::blocking_client local{client::local_endpoint(local_sys, **rt)};
  const double in_process = round_trip_us(local, rounds);

  node_process plain_node{tool};
  const double clear = remote_round_trip_us(plain_node, {}, rounds);

  test::certificate_set certificates;
  auto node_files = certificates.files("node");
  node_process tls_node{tool, {"--gpumem.node.certificate=" + node_files.certificate,
                               "--gpumem.node.key=" + node_files.key,
                               "--gpumem.node.ca-file=" + node_files.ca_file}};
  const double tls = remote_round_trip_us(tls_node, certificates.files("client"), rounds);

  std::printf("allocate+free round trip, 64 KiB, %d pairs each, one caller:\n", rounds);
  std::printf("  in process      %9.1f us  (baseline)\n", in_process);
  std::printf("  node, loopback  %9.1f us  ratio %.1f\n", clear, clear / in_process);
  std::printf("  node, TLS       %9.1f us  ratio %.1f (%.2f of the plain node)\n", tls,
              tls / in_process, tls / clear);
  (*rt)->shutdown();
}

struct cluster_here {
  networked_config cfg;
  caf::actor_system sys{cfg};
  cluster_actor cluster;
  explicit cluster_here(actors::cluster_options o) : cluster(actors::spawn_cluster(sys, o)) {}
  ~cluster_here() { caf::anon_send_exit(cluster, caf::exit_reason::user_shutdown); }
  template <class T, class... Ts>
  T ask(Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<T> out;
    std::string why;
    self->request(cluster, 120s, std::forward<Ts>(xs)...)
      .receive([&](T& x) { out = std::move(x); }, [&](caf::error& e) { why = sys.render(e); });
    if (!out)
      fail(why);
    return std::move(*out);
  }
  void wait_all_up(std::size_t n) {
    const auto until = clock_type::now() + 60s;
    while (true) {
      auto s = ask<cluster_status>(status_atom::value);
      if (s.nodes.size() == n && std::all_of(s.nodes.begin(), s.nodes.end(), [](auto& x) {
            return x.health == node_health::up;
          }))
        return;
      if (clock_type::now() > until)
        fail("nodes did not come up");
      std::this_thread::sleep_for(20ms);
    }
  }
};

void collectives(const std::string& tool, int rounds) {
  std::vector<std::unique_ptr<node_process>> nodes;
  double one = 0;
  std::printf("collective sleep + wake (level 1, 8 MiB of weights and 8 MiB of kv_cache per "
              "node), %d rounds each:\n", rounds);
  for (std::size_t n : {1u, 2u, 4u, 8u}) {
    while (nodes.size() < n)
      nodes.push_back(std::make_unique<node_process>(tool));
    actors::cluster_options o;
    for (auto& p : nodes)
      o.nodes.push_back(p->address());
    cluster_here c{o};
    c.wait_all_up(n);
    std::vector<placed_region> regions;
    for (auto& p : nodes)
      for (const char* tag : {"weights", "kv_cache"})
      {
        placement_request r;  // named: GCC 12 at -O3 misreads a braced one's string
        r.request.size = 8 * MiB;
        r.request.tag = tag;
        r.node = p->address();
        regions.push_back(c.ask<placed_region>(allocate_atom::value, r));
      }
    collective_request sleep{transition_kind::sleep, sleep_policy::at_level(1), {}, {}};
    collective_request wake{transition_kind::wake, {}, {}, {}};
    c.ask<std::vector<node_transition>>(collective_atom::value, sleep);  // warm-up
    c.ask<std::vector<node_transition>>(collective_atom::value, wake);
    const auto start = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
      c.ask<std::vector<node_transition>>(collective_atom::value, sleep);
      c.ask<std::vector<node_transition>>(collective_atom::value, wake);
    }
    const double ms =
      std::chrono::duration<double, std::milli>(clock_type::now() - start).count() / rounds;
    if (n == 1)
      one = ms;
    std::printf("  %zu node(s)  %8.2f ms per sleep + wake  ratio to 1 node %.2f\n", n, ms,
                ms / one);
    for (auto& r : regions)
      c.ask<ok_atom>(deallocate_atom::value, r);
  }
}

/// Milliseconds from `fault` (done to the first of two nodes) to the cluster's status
/// saying that node is lost, over `rounds` fresh pairs of nodes.
template <class Fault>
std::vector<double> time_to_lost(const std::string& tool, const actors::cluster_options& base,
                                 int rounds, Fault fault) {
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    node_process victim{tool}, other{tool};
    auto o = base;
    o.nodes = {victim.address(), other.address()};
    cluster_here c{o};
    c.wait_all_up(2);
    const auto start = clock_type::now();
    fault(victim);
    while (c.ask<cluster_status>(status_atom::value).nodes[0].health != node_health::lost) {
      if (clock_type::now() - start > 60s)
        fail("the node was never found lost");
      std::this_thread::sleep_for(1ms);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
    victim.signal(SIGCONT);
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

void detection(const std::string& tool, int rounds) {
  actors::cluster_options o;
  o.heartbeat = 100ms;
  o.deadline = 1000ms;
  auto show = [&](const char* what, const std::vector<double>& ms) {
    std::printf("%s to lost in the cluster's status (heartbeat %lld ms, deadline %lld ms), %d "
                "times: min %.1f ms, median %.1f ms, max %.1f ms\n",
                what, static_cast<long long>(o.heartbeat.count()),
                static_cast<long long>(o.deadline.count()), rounds, ms.front(),
                ms[ms.size() / 2], ms.back());
  };
  // SIGKILL closes the socket: CAF sees the link go. SIGSTOP keeps it open: only the
  // heartbeat's deadline finds it.
  show("SIGKILL", time_to_lost(tool, o, rounds, [](node_process& n) { n.kill(); }));
  show("SIGSTOP", time_to_lost(tool, o, rounds, [](node_process& n) { n.signal(SIGSTOP); }));
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: gpumem_cluster_bench PATH_TO_GPUMEM [ROUNDS]\n");
    return 2;
  }
  const std::string tool = argv[1];
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20;
  int rc = 0;
  try {
    round_trips(tool, rounds * 100);
    collectives(tool, rounds);
    detection(tool, 5);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpumem_cluster_bench: %s\n", e.what());
    rc = 1;
  }
  return rc;
}
