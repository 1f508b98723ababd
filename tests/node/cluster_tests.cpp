// The cluster over real `gpumem node` processes on loopback: it watches them (status,
// statistics, placement), sleeps and wakes them together, forwards their pressure, and
// survives the faults a network brings: a node killed during a collective sleep, killed
// while idle and restarted, stopped beyond the deadline and continued.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <signal.h>

#include <future>
#include <mutex>
#include <thread>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "gpumem/actors/cluster.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/register.hpp"
#include "node/cluster_fixture.hpp"
#include "node/node_child.hpp"
#include "support/wait.hpp"

namespace {

using namespace gpumem;
using namespace gpumem::messages;
using namespace std::chrono_literals;
using test::address_of;
using test::cluster_fixture;
using test::place;
using test::why;

/// Nodes small and quick to give up: a collective's deadline follows a node's
/// transition timeout.
std::vector<std::string> quick_node(std::vector<std::string> extra = {}) {
  extra.push_back("--gpumem.balancer.transition-timeout-ms=3000");
  return extra;
}

} // namespace

TEST_CASE("a cluster watches its nodes: status, statistics, placement", "[cluster][process]") {
  test::node_child a{quick_node()}, b{quick_node()};
  cluster_fixture c{{address_of(a), address_of(b)}};
  c.wait_health(address_of(a), node_health::up);
  c.wait_health(address_of(b), node_health::up);
  auto s = c.status();
  REQUIRE(s.nodes.size() == 2);
  CHECK(s.nodes[0].address == address_of(a));  // in the order the cluster learned of them
  CHECK(s.nodes[0].info.devices.size() == 1);
  CHECK(s.heartbeat_ms == 100);
  CHECK(s.deadline_ms == 1000);

  // Placed on a named node, then, once heartbeats have told the cluster, on the other:
  // the one with the most free memory.
  auto on_a = place(64 * MiB, "weights", address_of(a));
  auto first = c.ask<placed_region>(allocate_atom::value, on_a);
  INFO((first ? std::string{} : why(first.error())));
  REQUIRE(first);
  CHECK(first->node == address_of(a));
  test::wait_until("a heartbeat to report node a's allocation", [&] {
    auto now = c.status();
    auto* n = c.find(now, address_of(a));
    return n && !n->info.devices.empty() && n->info.devices[0].free_bytes <= 64 * MiB;
  });
  auto second = c.ask<placed_region>(allocate_atom::value,
                                     place(32 * MiB, "kv_cache", ""));
  REQUIRE(second);
  CHECK(second->node == address_of(b));

  auto stats = c.ask<nodes_statistics>(stats_atom::value);
  REQUIRE(stats);
  REQUIRE(stats->nodes.size() == 2);
  const auto& ta = stats->nodes[0].devices.total.total;
  const auto& tb = stats->nodes[1].devices.total.total;
  CHECK(stats->total.total.requested.current == ta.requested.current + tb.requested.current);
  CHECK(stats->total.total.requested.current == 96 * MiB);

  // Bad input: an unknown node, a node that is not there, a region freed twice.
  auto unknown = c.ask<placed_region>(allocate_atom::value,
                                      place(MiB, "weights", "127.0.0.1:1"));
  REQUIRE_FALSE(unknown);
  CHECK(gpumem_code(unknown.error()) == gpumem_errc::invalid_config);
  CHECK(c.ask<ok_atom>(deallocate_atom::value, *first));
  auto twice = c.ask<ok_atom>(deallocate_atom::value, *first);
  REQUIRE_FALSE(twice);
  CHECK(gpumem_code(twice.error()) == gpumem_errc::double_free);
  CHECK_THAT(error_message(twice.error()), Catch::Contains(address_of(a)));
  CHECK(c.ask<ok_atom>(deallocate_atom::value, *second));
}

TEST_CASE("nodes join and leave a running cluster", "[cluster][process]") {
  test::node_child a{quick_node()};
  cluster_fixture c{std::vector<std::string>{}};
  auto joined = c.ask<cluster_node>(join_atom::value, address_of(a));
  INFO((joined ? std::string{} : why(joined.error())));
  REQUIRE(joined);
  CHECK(joined->health == node_health::up);
  CHECK(joined->info.pid > 0);
  auto again = c.ask<cluster_node>(join_atom::value, address_of(a));
  REQUIRE(again);
  CHECK(c.status().nodes.size() == 1);

  auto bad = c.ask<cluster_node>(join_atom::value, std::string{"no port"});
  REQUIRE_FALSE(bad);
  CHECK(gpumem_code(bad.error()) == gpumem_errc::invalid_config);
  // Nothing listens there: refused, yet watched, so that it joins once it starts.
  auto free_port = test::node_child{quick_node()}.port();  // started, then killed
  auto nobody = c.ask<cluster_node>(join_atom::value, "127.0.0.1:" + std::to_string(free_port));
  REQUIRE_FALSE(nobody);
  CHECK(gpumem_code(nobody.error()) == gpumem_errc::node_unreachable);
  CHECK(c.status().nodes.size() == 2);

  CHECK(c.ask<ok_atom>(leave_atom::value, "127.0.0.1:" + std::to_string(free_port)));
  CHECK(c.ask<ok_atom>(leave_atom::value, address_of(a)));
  CHECK(c.status().nodes.empty());
  auto gone = c.ask<ok_atom>(leave_atom::value, address_of(a));
  REQUIRE_FALSE(gone);
  CHECK(gpumem_code(gone.error()) == gpumem_errc::invalid_config);
}

TEST_CASE("a collective sleep and wake over two nodes", "[cluster][process]") {
  test::node_child a{quick_node()}, b{quick_node()};
  cluster_fixture c{{address_of(a), address_of(b)}};
  c.wait_health(address_of(a), node_health::up);
  c.wait_health(address_of(b), node_health::up);
  std::vector<placed_region> regions;
  for (const auto& node : {address_of(a), address_of(b)}) {
    for (const char* tag : {"weights", "kv_cache"}) {
      auto r = c.ask<placed_region>(allocate_atom::value,
                                    place(8 * MiB, tag, node));
      REQUIRE(r);
      regions.push_back(*r);
    }
  }
  auto slept = c.collective(transition_kind::sleep);
  INFO((slept ? std::string{} : why(slept.error())));
  REQUIRE(slept);
  REQUIRE(slept->size() == 2);
  for (const auto& n : *slept) {
    REQUIRE(n.devices.size() == 1);
    CHECK(n.devices[0].kind == transition_kind::sleep);
    CHECK(n.devices[0].bytes_backed_up >= 8 * MiB);  // level 1 keeps the weights
  }
  c.wait_devices(address_of(a), device_state::asleep);
  c.wait_devices(address_of(b), device_state::asleep);
  auto woken = c.collective(transition_kind::wake);
  INFO((woken ? std::string{} : why(woken.error())));
  REQUIRE(woken);
  for (const auto& n : *woken)
    CHECK(n.devices[0].bytes_restored >= 8 * MiB);
  c.wait_devices(address_of(a), device_state::awake);
  c.wait_devices(address_of(b), device_state::awake);
  // The regions placed before are still theirs to free.
  for (const auto& r : regions)
    CHECK(c.ask<ok_atom>(deallocate_atom::value, r));
}

TEST_CASE("a node killed during a collective sleep: the cluster answers, the others wake",
          "[cluster][process]") {
  test::node_child a{quick_node()}, b{quick_node()}, killed{quick_node()};
  cluster_fixture c{{address_of(a), address_of(b), address_of(killed)}};
  for (const auto* n : {&a, &b, &killed})
    c.wait_health(address_of(*n), node_health::up);
  for (const auto* n : {&a, &b, &killed})
    REQUIRE(c.ask<placed_region>(allocate_atom::value,
                                 place(8 * MiB, "weights", address_of(*n))));
  // Stopped, the node takes the prepare and never answers: the collective is under way
  // when SIGKILL ends it.
  killed.signal(SIGSTOP);
  auto pending = std::async(std::launch::async, [&] { return c.collective(transition_kind::sleep); });
  // Killed while its prepare waits (or, on a slow machine, before it was sent: the
  // answer names the node either way, and nothing sleeps).
  std::this_thread::sleep_for(300ms);
  killed.signal(SIGKILL);
  REQUIRE(pending.wait_for(test::wait_limit) == std::future_status::ready);
  auto answer = std::make_shared<caf::expected<std::vector<node_transition>>>(pending.get());
  REQUIRE_FALSE(*answer);
  INFO(why(answer->error()));
  CHECK(gpumem_code(answer->error()) == gpumem_errc::node_unreachable);
  CHECK_THAT(error_message(answer->error()), Catch::Contains(address_of(killed)));
  c.wait_health(address_of(killed), node_health::lost);
  c.wait_devices(address_of(a), device_state::awake);
  c.wait_devices(address_of(b), device_state::awake);
  // Nothing was left half done: the two that remain sleep and wake together.
  REQUIRE(c.collective(transition_kind::sleep, {address_of(a), address_of(b)}));
  REQUIRE(c.collective(transition_kind::wake, {address_of(a), address_of(b)}));
}

TEST_CASE("a node killed while idle is lost by the deadline; restarted, it rejoins",
          "[cluster][process]") {
  auto a = std::make_unique<test::node_child>(quick_node());
  test::node_child b{quick_node()};
  const auto where = address_of(*a);
  const auto port = a->port();
  cluster_fixture c{{where, address_of(b)}};
  c.wait_health(where, node_health::up);
  a->signal(SIGKILL);
  c.wait_health(where, node_health::lost);
  CHECK(c.find(c.status(), address_of(b))->health == node_health::up);
  // A collective over every node refuses at once, doing nothing.
  auto refused = c.collective(transition_kind::sleep);
  REQUIRE_FALSE(refused);
  CHECK(gpumem_code(refused.error()) == gpumem_errc::node_unreachable);
  c.wait_devices(address_of(b), device_state::awake);
  a.reset();
  test::node_child restarted{quick_node({"--gpumem.node.listen=127.0.0.1:" + std::to_string(port)})};
  c.wait_health(where, node_health::up);
  CHECK(c.find(c.status(), where)->info.pid != 0);
}

TEST_CASE("a node stopped beyond the deadline, then continued: nothing hangs or sleeps twice",
          "[cluster][process]") {
  test::node_child a{quick_node()}, b{quick_node()};
  cluster_fixture c{{address_of(a), address_of(b)}};
  c.wait_health(address_of(a), node_health::up);
  c.wait_health(address_of(b), node_health::up);
  for (const auto* n : {&a, &b})
    REQUIRE(c.ask<placed_region>(allocate_atom::value,
                                 place(8 * MiB, "weights", address_of(*n))));
  b.signal(SIGSTOP);
  c.wait_health(address_of(b), node_health::lost);
  auto refused = c.collective(transition_kind::sleep);
  REQUIRE_FALSE(refused);
  CHECK(gpumem_code(refused.error()) == gpumem_errc::node_unreachable);
  auto alone = c.ask<placed_region>(allocate_atom::value,
                                    place(MiB, "weights", address_of(b)));
  REQUIRE_FALSE(alone);
  CHECK(gpumem_code(alone.error()) == gpumem_errc::node_unreachable);
  // The node that is up sleeps and wakes on its own.
  REQUIRE(c.collective(transition_kind::sleep, {address_of(a)}));
  REQUIRE(c.collective(transition_kind::wake, {address_of(a)}));
  b.signal(SIGCONT);
  c.wait_health(address_of(b), node_health::up);
  c.wait_devices(address_of(b), device_state::awake);
  auto stats = c.ask<nodes_statistics>(stats_atom::value);
  REQUIRE(stats);
  CHECK(stats->nodes[1].devices.total.sleeps == 0);
  CHECK(stats->nodes[0].devices.total.sleeps == 1);
}

TEST_CASE("a cluster forwards its nodes' pressure events", "[cluster][process]") {
  test::node_child a{quick_node({"--gpumem.pressure.period-ms=50", "--gpumem.pressure.warning=0.3",
                                 "--gpumem.pressure.critical=0.9"})};
  cluster_fixture c{{address_of(a)}};
  c.wait_health(address_of(a), node_health::up);
  auto heard = std::make_shared<std::vector<node_pressure_event>>();
  auto mutex = std::make_shared<std::mutex>();
  // Its state passed as arguments: CAF 0.17 spawning a function without any binds a
  // reference to a null std::tuple<> (UBSan reports it).
  auto listen = [](caf::event_based_actor*, std::shared_ptr<std::vector<node_pressure_event>> heard,
                   std::shared_ptr<std::mutex> mutex) -> caf::behavior {
    return {[heard, mutex](const node_pressure_event& e) {
      std::lock_guard lock{*mutex};
      heard->push_back(e);
    }};
  };
  auto listener = c.sys.spawn(listen, heard, mutex);
  REQUIRE(c.ask<ok_atom>(subscribe_atom::value,
                         caf::actor_cast<cluster_subscriber_actor>(listener)));
  REQUIRE(c.ask<placed_region>(allocate_atom::value,
                               place(64 * MiB, "weights", address_of(a))));
  test::wait_until("a warning from node a", [&] {
    std::lock_guard lock{*mutex};
    for (const auto& e : *heard)
      if (e.node == address_of(a) && e.event.level == pressure_level::warning)
        return true;
    return false;
  });
  caf::anon_send_exit(listener, caf::exit_reason::user_shutdown);
}

TEST_CASE("a node hosts the cluster: it watches itself and the others", "[cluster][process]") {
  test::node_child other(quick_node());
  test::node_child host(quick_node({"--cluster", "--gpumem.cluster.heartbeat-ms=100",
                                    "--gpumem.cluster.deadline-ms=1000",
                                    "--gpumem.cluster.nodes=" + address_of(other)}));
  cluster_fixture c{test::served_at{host.cluster_port(), {}}};
  c.wait_health(address_of(host), node_health::up);
  c.wait_health(address_of(other), node_health::up);
  CHECK(c.status().nodes.size() == 2);

  // A device with nothing on it has nothing to sleep: each node gets a region.
  std::vector<placed_region> regions;
  for (const auto& node : {address_of(host), address_of(other)}) {
    auto placed = c.ask<placed_region>(allocate_atom::value, place(4 * MiB, "kv", node));
    INFO((placed ? std::string{} : why(placed.error())));
    REQUIRE(placed);
    CHECK(placed->node == node);
    regions.push_back(*placed);
  }

  auto slept = c.collective(transition_kind::sleep);
  INFO((slept ? std::string{} : why(slept.error())));
  REQUIRE(slept);
  CHECK(slept->size() == 2);
  c.wait_devices(address_of(host), device_state::asleep);
  c.wait_devices(address_of(other), device_state::asleep);
  auto woken = c.collective(transition_kind::wake);
  INFO((woken ? std::string{} : why(woken.error())));
  REQUIRE(woken);
  c.wait_devices(address_of(host), device_state::awake);
  c.wait_devices(address_of(other), device_state::awake);
  for (const auto& r : regions)
    CHECK(c.ask<ok_atom>(deallocate_atom::value, r));
}
