// A node and its clients in two actor systems of one process, over loopback: every
// client call crosses CAF's network layer. The node's memory is this process's, so a
// remote sleep and wake can be checked byte for byte.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "gpumem/actors/node.hpp"
#include "node/node_fixture.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/client/remote_node.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;
using messages::gpumem_errc;
using test::client_process;
using test::node_process;

template <class T>
gpumem_errc code_of(const client::result<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().code;
}

/// A TCP socket bound to a free loopback port, and that port.
std::pair<int, std::uint16_t> bound_loopback_socket() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  return {s, ntohs(addr.sin_port)};
}

} // namespace

TEST_CASE("a client in another actor system allocates, sleeps and wakes through a node",
          "[node]") {
  node_process n;
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", n.port);
  INFO((remote ? std::string{} : remote.error().to_string()));
  REQUIRE(remote.ok());
  CHECK(remote->info.devices.size() == 2);
  CHECK(remote->info.request_timeout_ms == 4000);
  CHECK(remote->info.node_id == caf::to_string(n.sys.node()));
  CHECK(remote->info.pid == static_cast<std::int32_t>(getpid()));
  CHECK_FALSE(remote->endpoint.answers_by_deadline);
  CHECK(remote->endpoint.allocators.size() == 2);

  client::blocking_client memory{remote->endpoint};
  auto weights = memory.allocate(4 * MiB, "weights");
  REQUIRE(weights.ok());
  auto* bytes = reinterpret_cast<unsigned char*>(weights->address);
  for (std::size_t i = 0; i < 4 * MiB; ++i)
    bytes[i] = static_cast<unsigned char>(i * 31 + 7);
  auto kv = memory.allocate(2 * MiB, "kv_cache");
  REQUIRE(kv.ok());

  auto stats = memory.statistics();
  REQUIRE(stats.ok());
  CHECK(stats->total.total.allocated.current >= static_cast<std::int64_t>(6 * MiB));

  auto slept = memory.sleep(1);
  INFO((slept ? std::string{} : slept.error().to_string()));
  REQUIRE(slept.ok());
  CHECK(memory.is_sleeping().value());
  auto woken = memory.wake_up();
  REQUIRE(woken.ok());
  CHECK_FALSE(memory.is_sleeping().value());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < 4 * MiB; ++i)
    wrong += bytes[i] != static_cast<unsigned char>(i * 31 + 7);
  CHECK(wrong == 0);

  // Errors cross the network as the protocol's codes.
  CHECK(code_of(memory.allocate(0)) == gpumem_errc::zero_size);
  REQUIRE(memory.deallocate(*kv).ok());
  CHECK(code_of(memory.deallocate(*kv)) == gpumem_errc::double_free);
  CHECK(memory.deallocate(*weights).ok());
}

TEST_CASE("the node answers what it is and serves, each time afresh", "[node]") {
  node_process n;
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", n.port);
  REQUIRE(remote.ok());
  client::blocking_client memory{remote->endpoint};
  auto held = memory.allocate(32 * MiB, "weights", std::nullopt);
  REQUIRE(held.ok());
  caf::scoped_actor self{c.sys};
  std::optional<messages::node_info> info;
  self->request(remote->node, 10s, messages::info_atom::value)
    .receive([&](messages::node_info& i) { info = std::move(i); },
             [&](caf::error& e) { FAIL(c.sys.render(e)); });
  REQUIRE(info);
  REQUIRE(info->devices.size() == 2);
  auto& d = info->devices[static_cast<std::size_t>(held->device)];
  CHECK(d.free_bytes <= d.total_bytes - 32 * MiB);
  CHECK(memory.deallocate(*held).ok());
}

TEST_CASE("connecting where no node answers fails with node_unreachable", "[node]") {
  client_process c;
  SECTION("nothing listens") {
    // A port bound and closed again: free, and nothing listens on it.
    auto [s, port] = bound_loopback_socket();
    close(s);
    auto r = client::connect_node(c.sys, "127.0.0.1", port, 5s);
    CHECK(code_of(r) == gpumem_errc::node_unreachable);
  }
  SECTION("a peer accepts but never speaks: the deadline ends the wait") {
    auto [s, port] = bound_loopback_socket();
    REQUIRE(listen(s, 4) == 0);
    auto r = client::connect_node(c.sys, "127.0.0.1", port, 500ms);
    CHECK(code_of(r) == gpumem_errc::node_unreachable);
    CHECK_THAT(r.error().message, Catch::Contains("no answer before the deadline"));
    close(s);
  }
  SECTION("an actor published there is not a node") {
    node_process n;
    auto port = n.sys.middleman().publish(n.rt->balancer(), 0, "127.0.0.1", true);
    REQUIRE(port);
    auto r = client::connect_node(c.sys, "127.0.0.1", *port, 10s);
    CHECK(code_of(r) == gpumem_errc::node_unreachable);
    CHECK_THAT(r.error().message, Catch::Contains("not a gpumem node"));
  }
  SECTION("the clients' actor system has no network layer") {
    caf::actor_system_config plain;
    messages::register_protocol(plain);
    caf::actor_system local{plain};
    auto r = client::connect_node(local, "127.0.0.1", 9, 1s);
    CHECK(code_of(r) == gpumem_errc::invalid_config);
  }
}

TEST_CASE("a node that goes away: calls fail by their deadline, none hangs", "[node]") {
  auto n = std::make_unique<node_process>();
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", n->port);
  REQUIRE(remote.ok());
  client::blocking_client memory{remote->endpoint};
  REQUIRE(memory.allocate(1 * MiB, "kv_cache").ok());
  n.reset();  // the runtime stops, and its actor system with the network layer
  auto r = memory.allocate(1 * MiB, "kv_cache", 2000ms);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK((r.error().code == gpumem_errc::node_unreachable
         || r.error().code == gpumem_errc::timeout));
  CHECK(memory.statistics(2000ms).ok() == false);
}

TEST_CASE("a node refuses to listen beyond loopback unless told to", "[node]") {
  node_process n;
  auto refused = actors::publish_node(n.sys, n.node, {.listen = "0.0.0.0:0", .tls = {}}, false);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error(), Catch::Contains("--insecure"));
  auto bad = actors::publish_node(n.sys, n.node, {.listen = "127.0.0.1:99999", .tls = {}}, false);
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error(), Catch::Contains("bad port"));
  CHECK(actors::parse_listen_address("[::1]:9471")->loopback);
  CHECK(actors::parse_listen_address("localhost:1")->loopback);
  CHECK_FALSE(actors::parse_listen_address("10.0.0.1:1")->loopback);
  CHECK_FALSE(actors::parse_listen_address("9471").ok());
}
