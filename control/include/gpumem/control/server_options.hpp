#pragma once
// The HTTP control plane's settings and their defaults. Plain values with no
// dependencies, so that the runtime's configuration (config/gpumem.conf, the
// [gpumem.control] table) composes them as it does every component's options.

#include <chrono>
#include <cstddef>
#include <string>

namespace gpumem::control {

struct server_options {
  /// "host:port" ("[::1]:8080" too; port 0: any free one); empty: no control plane.
  /// Loopback by default: the routes put devices to sleep and carry no authentication.
  std::string listen = "127.0.0.1:9470";
  /// A request must arrive in full within this, counted from when the server starts
  /// waiting for it; an idle kept-alive connection is closed after it.
  std::chrono::milliseconds read_timeout{10000};
  /// An answer must be taken by the client within this.
  std::chrono::milliseconds write_timeout{10000};
  /// The largest request body read (SGLang's {"tags": [...]} needs little).
  std::size_t body_limit = std::size_t{64} << 10;
  /// Connections served at once; one more is answered 503 and closed.
  int max_connections = 64;
};

} // namespace gpumem::control
