#pragma once
// What the server and its connections share: the options, the service the routes
// use, the acceptor, and the connections open now (counted against the limit, and
// closed by stop()).

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <list>
#include <memory>
#include <mutex>

#include "gpumem/control/server_options.hpp"
#include "service.hpp"

namespace gpumem::control {

struct server_state : std::enable_shared_from_this<server_state> {
  server_state(boost::asio::any_io_executor ex, client::endpoint ep, server_options o);

  using stream_ptr = std::shared_ptr<boost::beast::tcp_stream>;
  using slot = std::list<stream_ptr>::iterator;

  /// Takes a place among the connections served, or refuses (the limit is reached,
  /// or the server stopped).
  bool admit(const stream_ptr& stream, slot& where);
  /// Gives the place back.
  void leave(slot where);
  /// Closes the acceptor and every connection, each on its own executor.
  void stop();

  boost::asio::any_io_executor executor;
  const server_options options;
  service svc;
  boost::asio::ip::tcp::acceptor acceptor;
  boost::asio::ip::tcp::endpoint bound;  // where the acceptor listens, set before it accepts

private:
  std::mutex mutex_;
  bool stopped_ = false;
  std::list<stream_ptr> open_;
};

} // namespace gpumem::control
