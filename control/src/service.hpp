#pragma once
// What every route works with: the runtime, through the Asio client, and the gate
// that lets one sleep or wake through this server run at a time.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/any_io_executor.hpp>

#include <atomic>

#include "gpumem/client/asio_client.hpp"

namespace gpumem::control {

struct service {
  service(client::endpoint ep, boost::asio::any_io_executor executor)
    : memory(std::move(ep), std::move(executor)) {}

  client::asio_client memory;
  std::atomic<bool> transition_running{false};
};

/// Holds the service's transition gate while it lives, if it could take it.
class transition_gate {
public:
  explicit transition_gate(service& s)
    : owner_(s.transition_running.exchange(true) ? nullptr : &s) {}
  ~transition_gate() {
    if (owner_ != nullptr)
      owner_->transition_running.store(false);
  }
  transition_gate(const transition_gate&) = delete;
  transition_gate& operator=(const transition_gate&) = delete;
  explicit operator bool() const noexcept { return owner_ != nullptr; }

private:
  service* owner_;
};

} // namespace gpumem::control
