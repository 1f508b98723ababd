#include "http_call.hpp"

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace gpumem::tool {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

std::optional<http_url> parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    return std::nullopt;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  http_url out;
  out.prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!out.prefix.empty() && out.prefix.back() == '/')
    out.prefix.pop_back();
  std::string port;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:9470
    auto close = authority.find(']');
    if (close == std::string::npos)
      return std::nullopt;
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos)
      port = authority.substr(colon + 1);
  }
  out.port = port.empty() ? "80" : port;
  if (out.host.empty() || out.port.find_first_not_of("0123456789") != std::string::npos
      || out.port.size() > 5 || std::stoul(out.port) > 65535)
    return std::nullopt;
  return out;
}

std::variant<http_result, std::string> http_request(const http_url& url, const std::string& method,
                                                     const std::string& path, const std::string& body,
                                                     std::chrono::seconds timeout) {
  asio::io_context io;
  tcp::resolver resolver{io};
  beast::tcp_stream stream{io};
  http::request<http::string_body> req{http::string_to_verb(method), url.prefix + path, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "gpumem ctl");
  if (!body.empty())
    req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{1} << 30);  // snapshots of large heaps
  std::string failed;
  auto fail = [&](const char* what, const beast::error_code& ec) {
    failed = std::string(what) + " http://" + url.host + ":" + url.port + ": "
             + (ec == beast::error::timeout ? "no answer within " + std::to_string(timeout.count())
                                                + " s"
                                            : ec.message());
  };

  // One deadline for the whole exchange: the stream's timeout spans every step.
  stream.expires_after(timeout);
  resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type found) {
    if (ec)
      return fail("cannot resolve", ec);
    stream.async_connect(found, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec)
        return fail("cannot reach", ec);
      http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
        if (ec)
          return fail("cannot send to", ec);
        http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
          if (ec)
            fail("no answer from", ec);
        });
      });
    });
  });
  io.run();
  if (!failed.empty())
    return failed;
  return http_result{parser.get().result_int(), parser.get().body()};
}

} // namespace gpumem::tool
