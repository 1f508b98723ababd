#pragma once
// Where a client sends its requests: the protocol's actor handles and the deadlines
// the runtime behind them keeps. A runtime in the same process gives its own handles
// (local_endpoint); a remote node gives the proxies caf::io::remote_actor returns for
// the same typed interfaces, and every client works unchanged over either.

#include <chrono>
#include <vector>

#include <caf/actor_system.hpp>

#include "gpumem/messages/actors.hpp"

namespace gpumem::client {

struct endpoint {
  /// The actor system the handles live in (or are proxied into); it must outlive
  /// every client made over this endpoint.
  caf::actor_system* system = nullptr;
  messages::balancer_actor balancer;
  /// One per device, index == device number (snapshots are asked of them).
  std::vector<messages::device_allocator_actor> allocators;
  messages::pressure_monitor_actor monitor;
  /// The runtime's own deadline for a request, and for a sleep or wake. A call's
  /// default deadline is a quarter beyond it, so that the runtime's own timeout
  /// answer, which names the device, arrives first.
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds transition_timeout{300000};
  /// True where every handle answers each request by those deadlines itself (a runtime
  /// in this process: the balancer keeps its own deadline table, the others answer at
  /// once, and a dead actor's requests fail at once). Calls whose timeout is no
  /// shorter then skip CAF's per-request timer, which costs several times the round
  /// trip; the others (and every call to a remote node) carry their deadline.
  bool answers_by_deadline = false;
};

/// The endpoint of a runtime in this process: anything with balancer(), allocators(),
/// monitor() and config().balancer.{request,transition}_timeout, as
/// gpumem::actors::runtime has (a template, so that clients need not include it).
template <class Runtime>
endpoint local_endpoint(caf::actor_system& sys, const Runtime& rt) {
  endpoint e;
  e.system = &sys;
  e.balancer = rt.balancer();
  e.allocators = rt.allocators();
  e.monitor = rt.monitor();
  e.request_timeout = rt.config().balancer.request_timeout;
  e.transition_timeout = rt.config().balancer.transition_timeout;
  e.answers_by_deadline = true;
  return e;
}

} // namespace gpumem::client
