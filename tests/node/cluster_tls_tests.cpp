// A cluster over mutual TLS, hosted by a node (gpumem node --cluster): it reaches the
// nodes whose certificates its CA signed, not a node in the clear; it serves clients
// with such a certificate, refuses a stranger and a client in the clear, and goes on
// serving.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "gpumem/cuda/byte_units.hpp"
#include "node/cluster_fixture.hpp"
#include "node/node_child.hpp"
#include "node/node_fixture.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace std::chrono_literals;
using test::address_of;
using test::client_process;
using test::cluster_fixture;
using test::place;
using test::why;

std::vector<std::string> over_tls(const tls_files& files, std::vector<std::string> extra = {}) {
  extra.insert(extra.end(), {"--gpumem.node.certificate=" + files.certificate,
                             "--gpumem.node.key=" + files.key,
                             "--gpumem.node.ca-file=" + files.ca_file,
                             "--gpumem.balancer.transition-timeout-ms=3000"});
  return extra;
}

} // namespace

TEST_CASE("a cluster over mutual TLS reaches and serves only the peers its CA signed",
          "[cluster][tls][process]") {
  test::test_certificates certs;
  const auto node_files = certs.files("node");
  test::node_child other{over_tls(node_files)};
  test::node_child clear{{"--gpumem.balancer.transition-timeout-ms=3000"}};
  test::node_child host{over_tls(node_files, {"--cluster", "--gpumem.cluster.heartbeat-ms=100",
                                              "--gpumem.cluster.deadline-ms=1000",
                                              "--gpumem.cluster.nodes=" + address_of(other) + ","
                                                + address_of(clear)})};

  cluster_fixture c{test::served_at{host.cluster_port(), certs.files("client")}};
  c.wait_health(address_of(host), node_health::up);
  c.wait_health(address_of(other), node_health::up);
  // The node in the clear does not complete a TLS handshake: tried, and not up.
  test::wait_until("the node in the clear to have been tried", [&] {
    auto s = c.status();
    auto* n = c.find(s, address_of(clear));
    return n != nullptr && n->health != node_health::up && n->cause != "not reached yet";
  });

  std::vector<placed_region> regions;
  for (const auto& node : {address_of(host), address_of(other)}) {
    auto placed = c.ask<placed_region>(allocate_atom::value, place(4 * MiB, "kv", node));
    INFO((placed ? std::string{} : why(placed.error())));
    REQUIRE(placed);
    regions.push_back(*placed);
  }
  auto both = std::vector<std::string>{address_of(host), address_of(other)};
  auto slept = c.collective(transition_kind::sleep, both);
  INFO((slept ? std::string{} : why(slept.error())));
  REQUIRE(slept);
  CHECK(slept->size() == 2);
  c.wait_devices(address_of(other), device_state::asleep);
  auto woken = c.collective(transition_kind::wake, both);
  INFO((woken ? std::string{} : why(woken.error())));
  REQUIRE(woken);
  c.wait_devices(address_of(other), device_state::awake);

  CHECK(c.status().nodes.size() == 3);
  // Clients the cluster refuses: one signed by another CA, one in the clear.
  for (const auto& files : {certs.files("stranger", "ca"), tls_files{}}) {
    client_process refused{files};
    auto r = client::connect_cluster(refused.sys, "127.0.0.1", host.cluster_port(), 3s);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == gpumem_errc::node_unreachable);
    WARN("refused: " << r.error().message);
    CHECK(c.status().nodes.size() == 3);
  }
  // ... and it goes on serving.
  CHECK(c.status().nodes.size() == 3);
  for (const auto& r : regions)
    CHECK(c.ask<ok_atom>(deallocate_atom::value, r));
  CHECK_FALSE(host.exited());
}
