#pragma once
// One connection: requests read under the read timeout and the body limit, answered
// in order (HTTP/1.1 keep-alive), each answer written under the write timeout. A
// request that cannot be read is answered 400, 413 or 431 where it can be, and the
// connection closed; a stalled one is cut off at its timeout.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/awaitable.hpp>

#include <memory>

#include "server_state.hpp"

namespace gpumem::control {

boost::asio::awaitable<void> serve_connection(std::shared_ptr<server_state> st,
                                              server_state::stream_ptr stream);

/// A connection beyond the limit: answered 503 (too_many_connections) and closed.
boost::asio::awaitable<void> refuse_connection(std::shared_ptr<server_state> st,
                                               server_state::stream_ptr stream);

} // namespace gpumem::control
