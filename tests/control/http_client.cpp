#include "control/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <catch2/catch.hpp>

#include <array>

#include "support/wait.hpp"

namespace gpumem::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

tcp::endpoint loopback(std::uint16_t port) { return {asio::ip::address_v4::loopback(), port}; }

/// Runs `io` until `done` or the wait limit; fails the test past the limit.
void run_until(asio::io_context& io, const bool& done, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds{50});
  }
  if (!done)
    FAIL("no answer to " << what << " within " << wait_limit.count() << " s");
}

} // namespace

nlohmann::json http_answer::json() const {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  INFO(body);
  REQUIRE_FALSE(doc.is_discarded());
  return doc;
}

http_answer http_call(std::uint16_t port, http::verb method, const std::string& target,
                      const std::string& body, const http_headers& headers) {
  asio::io_context io;
  beast::tcp_stream stream{io};
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [name, value] : headers)
    req.set(name, value);
  if (!body.empty() || method == http::verb::post) {
    req.body() = body;
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{256} << 20);
  beast::error_code failed;
  bool done = false;
  stream.async_connect(loopback(port), [&](beast::error_code ec) {
    if (ec) {
      failed = ec;
      done = true;
      return;
    }
    http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        failed = ec;
        done = true;
        return;
      }
      http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
        failed = ec;
        done = true;
      });
    });
  });
  const auto what = std::string(http::to_string(method)) + " " + target;
  run_until(io, done, what);
  if (failed)
    FAIL(what << ": " << failed.message());
  const auto& res = parser.get();
  http_answer out;
  out.status = res.result_int();
  out.body = res.body();
  out.content_type = std::string(res[http::field::content_type]);
  out.allow = std::string(res[http::field::allow]);
  out.keep_alive = res.keep_alive();
  return out;
}

raw_connection::raw_connection(std::uint16_t port) : socket_(io_) {
  bool done = false;
  beast::error_code failed;
  socket_.async_connect(loopback(port), [&](beast::error_code ec) {
    failed = ec;
    done = true;
  });
  run_until(io_, done, "a connection");
  if (failed)
    FAIL("connect: " << failed.message());
}

void raw_connection::send(const std::string& bytes) {
  bool done = false;
  beast::error_code failed;
  asio::async_write(socket_, asio::buffer(bytes), [&](beast::error_code ec, std::size_t) {
    failed = ec;
    done = true;
  });
  run_until(io_, done, "a write");
  if (failed)
    FAIL("send: " << failed.message());
}

template <class Enough>
bool raw_connection::read_until(Enough enough, std::chrono::nanoseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::array<char, 4096> chunk;
  while (!closed_ && !enough() && std::chrono::steady_clock::now() < deadline) {
    bool done = false;
    socket_.async_read_some(asio::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
      received_.append(chunk.data(), n);
      closed_ = closed_ || static_cast<bool>(ec);  // EOF, or reset by a close
      done = true;
    });
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds{20});
    }
    if (!done) {  // the limit passed with a read pending: cancel it and let it finish
      beast::error_code ignored;
      socket_.cancel(ignored);
      io_.restart();
      io_.run();
      closed_ = false;
      return false;
    }
  }
  return closed_ || enough();
}

bool raw_connection::closed_within(std::chrono::nanoseconds limit) {
  return read_until([] { return false; }, limit) && closed_;
}

bool raw_connection::received_within(const std::string& text, std::chrono::nanoseconds limit) {
  read_until([&] { return received_.find(text) != std::string::npos; }, limit);
  return received_.find(text) != std::string::npos;
}

} // namespace gpumem::test
