#pragma once
// "host:port" (gpumem.control.listen) as the endpoints to bind: "127.0.0.1:8080",
// "[::1]:0", "localhost:9470" (resolved). Bad text or an unknown host is a message.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <string>
#include <variant>

namespace gpumem::control {

/// The first endpoint `address` resolves to, or why there is none.
std::variant<boost::asio::ip::tcp::endpoint, std::string>
resolve_listen_address(const boost::asio::any_io_executor& executor, const std::string& address);

} // namespace gpumem::control
