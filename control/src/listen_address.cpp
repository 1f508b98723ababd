#include "listen_address.hpp"

#include <boost/asio/ip/tcp.hpp>

namespace gpumem::control {

namespace asio = boost::asio;
using asio::ip::tcp;

std::variant<tcp::endpoint, std::string> resolve_listen_address(const asio::any_io_executor& executor,
                                                                const std::string& address) {
  auto colon = address.rfind(':');
  if (address.empty() || colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return "expected \"host:port\", got \"" + address + "\"";
  auto host = address.substr(0, colon);
  auto port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);  // "[::1]"
  tcp::resolver resolver{executor};
  boost::system::error_code ec;
  auto found = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || found.empty())
    return "cannot resolve \"" + address + "\": " + (ec ? ec.message() : "no address");
  return found.begin()->endpoint();
}

} // namespace gpumem::control
