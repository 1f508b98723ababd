#pragma once
// A node and a client in two actor systems of one process, over loopback, in the clear
// or over mutual TLS.

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "clients/client_fixture.hpp"
#include "gpumem/actors/node.hpp"
#include "gpumem/messages/tls.hpp"

namespace gpumem::test {

/// A configuration with the network layer, the protocol and, given files, TLS.
struct networked_config : caf::actor_system_config {
  explicit networked_config(const messages::tls_files& tls = {}) {
    load<caf::io::middleman>();
    messages::register_protocol(*this);
    if (!tls.empty())
      if (auto why = messages::use_tls(*this, tls); !why.empty())
        FAIL("use_tls: " << why);
  }
};

/// A runtime with its node actor published on `listen` (a free loopback port).
struct node_process {
  networked_config cfg;
  caf::actor_system sys{cfg};
  std::unique_ptr<actors::runtime> rt;
  messages::node_actor node;
  std::uint16_t port = 0;

  explicit node_process(const messages::tls_files& tls = {},
                        std::string listen = "127.0.0.1:0")
    : cfg(tls) {
    auto config = client_test_config();
    config.balancer.request_timeout = std::chrono::seconds{4};
    auto made = actors::runtime::create(sys, config);
    if (!made)
      FAIL("runtime::create: " << made.error().to_string());
    rt = std::move(made).value();
    node = sys.spawn(actors::node, rt->balancer(), rt->allocators(), rt->monitor(),
                     config.balancer.request_timeout, config.balancer.transition_timeout);
    auto published = actors::publish_node(sys, node, {.listen = std::move(listen), .tls = {}}, false);
    if (!published)
      FAIL("publish_node: " << published.error());
    port = *published;
  }
  ~node_process() { stop(); }
  void stop() {
    if (!rt)
      return;
    caf::anon_send_exit(node, caf::exit_reason::user_shutdown);
    rt.reset();
  }
};

/// The clients' side: an actor system of its own.
struct client_process {
  networked_config cfg;
  caf::actor_system sys;

  explicit client_process(const messages::tls_files& tls = {}) : cfg(tls), sys(cfg) {}
};

} // namespace gpumem::test
