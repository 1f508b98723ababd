#pragma once
// A runtime (host backend, two devices of 256 MiB) served by the control plane on an
// ephemeral loopback port, its io_context run by a thread of its own; and a blocking
// client straight to the runtime, to set up memory and to check what the HTTP routes
// did.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "clients/client_fixture.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/control/server.hpp"
#include "support/wait.hpp"

namespace gpumem::test {

inline control::server_options test_server_options() {
  control::server_options o;
  o.listen = "127.0.0.1:0";
  return o;
}

class served_runtime {
public:
  explicit served_runtime(control::server_options options = test_server_options(),
                          const actors::runtime_config& config = client_test_config())
    : fx(config) {
    start(fx.endpoint(), std::move(options));
  }
  /// Serves `endpoint` (fx's silent one, say) instead of the runtime's own.
  template <class MakeEndpoint>
  served_runtime(MakeEndpoint make, control::server_options options) : fx() {
    start(make(fx), std::move(options));
  }
  ~served_runtime() {
    stop();  // no FAIL from a destructor: a test that cares checks stop() itself
    fx.stop_silent();
  }

  std::uint16_t port() const { return port_; }
  client::blocking_client& direct() { return *direct_; }

  /// Stops the server and waits (bounded) for its io_context to run out of work; false
  /// if it had to be stopped by force.
  bool stop() {
    if (!runner_.joinable())
      return clean_;
    server_->stop();
    clean_ = poll_until([this] { return finished_.load(); }).done;
    if (!clean_)
      io_.stop();  // the thread must end before the io_context does
    runner_.join();
    return clean_;
  }

  client_fixture fx;

private:
  void start(client::endpoint endpoint, control::server_options options) {
    direct_ = std::make_unique<client::blocking_client>(endpoint);
    auto served = control::server::start(io_.get_executor(), endpoint, std::move(options));
    if (!served)
      FAIL("server::start: " << served.error().to_string());
    server_ = std::move(served).value();
    port_ = server_->port();
    runner_ = std::thread([this] {
      io_.run();
      finished_ = true;
    });
  }

  std::unique_ptr<client::blocking_client> direct_;
  boost::asio::io_context io_;
  std::unique_ptr<control::server> server_;
  std::uint16_t port_ = 0;
  std::atomic<bool> finished_{false};
  bool clean_ = false;
  std::thread runner_;
};

} // namespace gpumem::test
