// A node over mutual TLS: a client whose certificate the node's CA signed is served;
// one signed by another CA, one without a certificate and one speaking in the clear are
// refused, and the node goes on serving.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gpumem/client/blocking_client.hpp"
#include "gpumem/client/remote_node.hpp"
#include "node/node_child.hpp"
#include "node/node_fixture.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;
using messages::gpumem_errc;
using messages::tls_files;
using test::client_process;
using test::node_process;
using test::test_certificates;

bool serves(client_process& c, std::uint16_t port) {
  auto remote = client::connect_node(c.sys, "127.0.0.1", port, 10s);
  INFO((remote ? std::string{} : remote.error().to_string()));
  if (!remote)
    return false;
  client::blocking_client memory{remote->endpoint};
  auto r = memory.allocate(2 * MiB, "kv_cache");
  return r.ok() && memory.deallocate(*r).ok();
}

} // namespace

TEST_CASE("over mutual TLS a node serves the peers its CA signed, and only them",
          "[node][tls]") {
  test_certificates certs;
  node_process n{certs.files("node")};

  SECTION("a client with a certificate the node's CA signed") {
    client_process c{certs.files("client")};
    CHECK(serves(c, n.port));
  }
  SECTION("refused: a certificate another CA signed, a client in the clear") {
    // A client served before the refusals goes on being served over the same link:
    // a refused handshake leaves nothing behind that drops healthy links
    // (cmake/caf_openssl.cmake).
    client_process good{certs.files("client")};
    auto remote = client::connect_node(good.sys, "127.0.0.1", n.port, 10s);
    REQUIRE(remote.ok());
    client::blocking_client memory{remote->endpoint};
    REQUIRE(memory.allocate(2 * MiB, "kv_cache").ok());
    {
      client_process stranger{certs.files("stranger", "ca")};
      auto r = client::connect_node(stranger.sys, "127.0.0.1", n.port, 3s);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == gpumem_errc::node_unreachable);
    }
    {
      client_process clear;
      auto r = client::connect_node(clear.sys, "127.0.0.1", n.port, 3s);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code == gpumem_errc::node_unreachable);
    }
    auto after = memory.allocate(2 * MiB, "kv_cache");
    INFO((after.ok() ? std::string{} : after.error().message));
    CHECK(after.ok());
    client_process late{certs.files("client")};
    CHECK(serves(late, n.port));  // and it serves new clients
  }
  SECTION("a client that does not trust the node's CA refuses it") {
    client_process wary{certs.files("client", "other")};
    auto r = client::connect_node(wary.sys, "127.0.0.1", n.port, 3s);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == gpumem_errc::node_unreachable);
  }
}

TEST_CASE("with TLS a node may listen beyond loopback", "[node][tls]") {
  test_certificates certs;
  node_process n{certs.files("node"), "0.0.0.0:0"};
  client_process c{certs.files("client")};
  CHECK(serves(c, n.port));
}

TEST_CASE("TLS files are checked before anything starts", "[node][tls]") {
  caf::actor_system_config cfg;
  auto missing = messages::use_tls(cfg, {"", "k", "ca"});
  CHECK_THAT(missing, Catch::Contains("certificate is missing"));
  auto unreadable = messages::use_tls(cfg, {"/nonexistent/node.pem", "/nonexistent/node.key",
                                            "/nonexistent/ca.pem"});
  CHECK_THAT(unreadable, Catch::Contains("cannot read /nonexistent/node.pem"));
}

TEST_CASE("gpumem node over TLS: its configuration's files, a client with a certificate",
          "[node][tls][process]") {
  test_certificates certs;
  auto files = certs.files("node");
  test::node_child node{{"--gpumem.node.certificate=" + files.certificate,
                         "--gpumem.node.key=" + files.key, "--gpumem.node.ca-file=" + files.ca_file,
                         "--gpumem.node.listen=0.0.0.0:0"}};
  client_process c{certs.files("client")};
  CHECK(serves(c, node.port()));
  client_process clear;
  auto r = client::connect_node(clear.sys, "127.0.0.1", node.port(), 3s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == gpumem_errc::node_unreachable);
  CHECK_FALSE(node.exited());
}

TEST_CASE("gpumem node refuses to start with TLS files it cannot read", "[node][tls][process]") {
  const char* tool = std::getenv("GPUMEM_TOOL");
  REQUIRE(tool != nullptr);
  auto command = std::string{tool}
                 + " node --gpumem.node.certificate=/nonexistent.pem --gpumem.node.key=/k"
                   " --gpumem.node.ca-file=/ca 2>&1";
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[512];
    while (auto n = fread(buf, 1, sizeof buf, p))
      out.append(buf, n);
    int status = pclose(p);
    CHECK(WEXITSTATUS(status) != 0);
  }
  CHECK_THAT(out, Catch::Contains("cannot read /nonexistent.pem"));
}
