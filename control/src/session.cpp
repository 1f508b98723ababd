#include "session.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/core/error.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <optional>

#include "routes.hpp"

namespace gpumem::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
using std::chrono::milliseconds;

namespace {

/// Request lines and headers: the routes need a short target and a few fields.
constexpr std::uint32_t header_limit = 8 * 1024;
/// Bytes read and dropped after an error answer before the connection closes, so that
/// the client reads the answer rather than a reset (unread input makes close send RST).
constexpr std::size_t drain_limit = 1 << 20;
constexpr milliseconds drain_time{1000};

auto with(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

/// The answer to a request that could not be read; nullopt where none can be sent
/// (the client left, or its time ran out and the connection is closed).
std::optional<reply> read_failure(const beast::error_code& ec) {
  if (ec == http::error::body_limit)
    return error_reply(http::status::payload_too_large, "body_too_large",
                       "the request body is larger than gpumem.control.body-limit");
  if (ec == http::error::header_limit)
    return error_reply(http::status::request_header_fields_too_large, "header_too_large",
                       "the request line and headers pass " + std::to_string(header_limit)
                         + " bytes");
  const beast::error_code parse_error = http::error::bad_method;
  if (ec.category() == parse_error.category() && ec != http::error::end_of_stream
      && ec != http::error::partial_message)
    return error_reply(http::status::bad_request, "bad_request",
                       "malformed HTTP request: " + ec.message());
  return std::nullopt;
}

reply answer_error(const request_error& e) { return error_reply(e.status, e.code, e.message); }

http::response<http::string_body> to_response(reply r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{r.status, version};
  res.set(http::field::server, "gpumem");
  res.set(http::field::content_type, r.content_type);
  if (!r.allow.empty())
    res.set(http::field::allow, r.allow);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

asio::awaitable<bool> write(beast::tcp_stream& stream, http::response<http::string_body>& res,
                            milliseconds timeout) {
  beast::error_code ec;
  stream.expires_after(timeout);
  co_await http::async_write(stream, res, with(ec));
  co_return !ec;
}

/// Closes after an error answer: no more sending, then what the client still sends is
/// read and dropped (bounded in bytes and time) until it closes its side.
asio::awaitable<void> linger_close(beast::tcp_stream& stream, milliseconds limit) {
  beast::error_code ec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  stream.expires_after(std::min(limit, drain_time));
  std::array<char, 4096> scratch;
  for (std::size_t drained = 0; !ec && drained < drain_limit;)
    drained += co_await stream.async_read_some(asio::buffer(scratch), with(ec));
  stream.close();
}

/// The routes' view of a message: method, path, query and body.
asio::awaitable<reply> answer(service& svc, const http::request<http::string_body>& msg) {
  std::string_view target{msg.target().data(), msg.target().size()};
  auto question = target.find('?');
  request req;
  req.method = msg.method();
  req.path = std::string(target.substr(0, question));
  req.body = msg.body();
  try {
    if (question != std::string_view::npos)
      req.params = query::parse(target.substr(question + 1));
  } catch (const request_error& e) {
    co_return answer_error(e);
  }
  co_return co_await dispatch(svc, req);
}

} // namespace

asio::awaitable<void> serve_connection(std::shared_ptr<server_state> st,
                                       server_state::stream_ptr stream) {
  const auto& o = st->options;
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(o.body_limit);
    beast::error_code ec;
    // The whole request (and the idle time before it) within the read timeout.
    stream->expires_after(o.read_timeout);
    co_await http::async_read_header(*stream, buffer, parser, with(ec));
    if (!ec && !parser.is_done()) {
      const auto& head = parser.get();
      if (beast::iequals(head[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, head.version()};
        stream->expires_after(o.write_timeout);
        co_await http::async_write(*stream, go_on, with(ec));
        stream->expires_after(o.read_timeout);
      }
      if (!ec)
        co_await http::async_read(*stream, buffer, parser, with(ec));
    }
    if (ec) {
      if (auto failed = read_failure(ec)) {
        auto res = to_response(std::move(*failed), 11, false);
        if (co_await write(*stream, res, o.write_timeout))
          co_await linger_close(*stream, o.read_timeout);
      }
      break;
    }
    stream->expires_never();  // the runtime answers by its own deadlines

    const auto& msg = parser.get();
    const auto started = std::chrono::steady_clock::now();
    auto r = co_await answer(st->svc, msg);
    auto level = static_cast<unsigned>(r.status) >= 500 ? spdlog::level::warn : spdlog::level::debug;
    spdlog::log(level, "control: {} {} -> {} ({:.1f} ms)", std::string(msg.method_string()),
                std::string(msg.target()),
                static_cast<unsigned>(r.status),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                  .count());
    auto res = to_response(std::move(r), msg.version(), msg.keep_alive());
    if (!co_await write(*stream, res, o.write_timeout) || !res.keep_alive())
      break;
  }
  beast::error_code ignored;
  stream->socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream->close();
}

asio::awaitable<void> refuse_connection(std::shared_ptr<server_state> st,
                                        server_state::stream_ptr stream) {
  auto res = to_response(
    error_reply(http::status::service_unavailable, "too_many_connections",
                "the server serves " + std::to_string(st->options.max_connections)
                  + " connections at once (gpumem.control.max-connections); try again"),
    11, false);
  if (co_await write(*stream, res, st->options.write_timeout))
    co_await linger_close(*stream, st->options.read_timeout);
  stream->close();
}

} // namespace gpumem::control
