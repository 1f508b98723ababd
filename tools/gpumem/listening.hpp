#pragma once
// What gpumem node and gpumem cluster do alike once an actor is published: say where it
// listens, write its port for whoever started it on port 0, and serve until a signal.

#include <cstdint>
#include <string>
#include <string_view>

#include "gpumem/actors/node.hpp"

namespace gpumem::tool {

/// How a published actor is announced.
struct announcement {
  std::string_view who;  // "gpumem node"
  actors::listen_address where;
  std::uint16_t port = 0;  // the one bound
  bool tls = false;
  /// What any peer could do where it listens beyond loopback without TLS.
  std::string_view exposed;
  std::string_view detail;  // appended to the line printed; may be empty
};

/// Prints "WHO: listening on HOST:PORT (TLS)DETAIL" on stdout, warns when it listens
/// beyond loopback without TLS, and writes the port to `port_file` (unless empty).
/// False, after logging why, when the file could not be written.
bool announce(const announcement& a, const std::string& port_file);

/// "host:port" with IPv6 hosts in brackets.
std::string address_of(const actors::listen_address& where, std::uint16_t port);

/// Blocks until SIGINT or SIGTERM.
void wait_for_stop_signal(std::string_view who);

} // namespace gpumem::tool
