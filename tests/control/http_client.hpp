#pragma once
// Beast's own client for the control plane's tests: one request per connection, or a
// raw connection that sends what a test says (a malformed or stalled request). Every
// wait is bounded by wall-clock time (support/wait.hpp's limit); past it the test fails.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gpumem::test {

struct http_answer {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string allow;
  bool keep_alive = true;

  /// The body as JSON (the test fails if it is not).
  nlohmann::json json() const;
  /// The "error" field of a JSON error answer.
  std::string error() const { return json().value("error", ""); }
};

using http_headers = std::vector<std::pair<std::string, std::string>>;

/// Sends one request to 127.0.0.1:`port` on a new connection and reads the answer.
http_answer http_call(std::uint16_t port, boost::beast::http::verb method,
                      const std::string& target, const std::string& body = {},
                      const http_headers& headers = {});

inline http_answer http_get(std::uint16_t port, const std::string& target) {
  return http_call(port, boost::beast::http::verb::get, target);
}
inline http_answer http_post(std::uint16_t port, const std::string& target,
                             const std::string& body = {}) {
  return http_call(port, boost::beast::http::verb::post, target, body);
}

/// A connection that sends bytes as the test says and reads what the server sends.
class raw_connection {
public:
  explicit raw_connection(std::uint16_t port);
  void send(const std::string& bytes);
  /// Reads until the server closes the connection or `limit` passes; true if it closed.
  /// Whatever came meanwhile is appended to received().
  bool closed_within(std::chrono::nanoseconds limit);
  /// Reads until `text` has arrived or `limit` passes; true if it did.
  bool received_within(const std::string& text, std::chrono::nanoseconds limit);
  const std::string& received() const noexcept { return received_; }

private:
  /// Reads until `enough()` or EOF/error or `limit`; true unless the limit passed first.
  template <class Enough>
  bool read_until(Enough enough, std::chrono::nanoseconds limit);

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
  bool closed_ = false;
};

} // namespace gpumem::test
