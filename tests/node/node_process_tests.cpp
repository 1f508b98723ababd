// `gpumem node` as a real process, driven by a client in this one: the faults a
// network brings (a node killed, a node stopped, bytes that are not the protocol)
// end calls by their deadlines and leave the node serving.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gpumem/client/blocking_client.hpp"
#include "gpumem/client/remote_node.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/register.hpp"
#include "node/node_child.hpp"
#include "support/wait.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;

struct client_process {
  struct config : caf::actor_system_config {
    config() {
      load<caf::io::middleman>();
      messages::register_protocol(*this);
    }
  } cfg;
  caf::actor_system sys{cfg};
};

} // namespace

TEST_CASE("a node killed with SIGKILL: the next call ends by its deadline", "[node][process]") {
  test::node_child node;
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", node.port());
  INFO((remote ? std::string{} : remote.error().to_string()));
  REQUIRE(remote.ok());
  client::blocking_client memory{remote->endpoint};
  REQUIRE(memory.allocate(4 * MiB, "weights").ok());
  node.signal(SIGKILL);
  REQUIRE(test::poll_until([&] { return node.exited(); }).done);
  auto r = memory.allocate(1 * MiB, "kv_cache", 3000ms);
  REQUIRE_FALSE(r.ok());
  // Where CAF has seen the link go, the proxy is gone: node_unreachable at once; where it
  // has not yet, the request waits for an answer that never comes: its deadline ends it.
  INFO(r.error().to_string());
  CHECK((r.error().code == messages::gpumem_errc::node_unreachable
         || r.error().code == messages::gpumem_errc::timeout));
  CHECK(memory.statistics(3000ms).ok() == false);
  // And a new connection to the dead port is refused as unreachable.
  auto again = client::connect_node(c.sys, "127.0.0.1", node.port(), 3s);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == messages::gpumem_errc::node_unreachable);
}

TEST_CASE("a node stopped beyond the deadline: calls time out, and after SIGCONT it serves",
          "[node][process]") {
  test::node_child node;
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", node.port());
  REQUIRE(remote.ok());
  client::blocking_client memory{remote->endpoint};
  auto held = memory.allocate(8 * MiB, "weights");
  REQUIRE(held.ok());
  node.signal(SIGSTOP);
  auto slept = memory.sleep(1, {}, 1500ms);
  REQUIRE_FALSE(slept.ok());
  CHECK(slept.error().code == messages::gpumem_errc::timeout);
  node.signal(SIGCONT);
  // The sleep that timed out may still run on the node once it continues; wait for the
  // node to settle, then a wake brings everything back, and nothing sleeps twice.
  auto settled = test::poll_until([&] {
    auto s = memory.status(2000ms);
    return s.ok();
  });
  REQUIRE(settled.done);
  auto sleeping = memory.is_sleeping();
  REQUIRE(sleeping.ok());
  if (*sleeping)
    REQUIRE(memory.wake_up().ok());
  CHECK_FALSE(memory.is_sleeping().value());
  auto again = memory.sleep(1);
  REQUIRE(again.ok());
  CHECK(memory.is_sleeping().value());
  REQUIRE(memory.wake_up().ok());
  CHECK(memory.deallocate(*held).ok());
}

TEST_CASE("bytes that are not the protocol leave the node serving", "[node][process]") {
  test::node_child node;
  auto send_raw = [&](const std::vector<unsigned char>& bytes) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(node.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    if (!bytes.empty())
      (void)send(s, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    close(s);
  };
  std::mt19937 random{12345};
  for (int i = 0; i < 20; ++i) {
    std::vector<unsigned char> noise(1 + random() % 4096);
    for (auto& b : noise)
      b = static_cast<unsigned char>(random());
    send_raw(noise);
  }
  send_raw({});                       // connected and closed at once
  send_raw({0x00, 0x00, 0x00, 0x10});  // a handshake header cut short
  REQUIRE_FALSE(node.exited());
  client_process c;
  auto remote = client::connect_node(c.sys, "127.0.0.1", node.port());
  INFO((remote ? std::string{} : remote.error().to_string()));
  REQUIRE(remote.ok());
  client::blocking_client memory{remote->endpoint};
  auto r = memory.allocate(1 * MiB, "kv_cache");
  REQUIRE(r.ok());
  CHECK(memory.deallocate(*r).ok());
}

TEST_CASE("gpumem node refuses an address beyond loopback without --insecure",
          "[node][process]") {
  const char* tool = std::getenv("GPUMEM_TOOL");
  REQUIRE(tool != nullptr);
  auto command = std::string{tool} + " node --gpumem.node.listen=0.0.0.0:0 > /dev/null 2>&1";
  int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
}
