#pragma once
// One HTTP request from a command-line tool: a URL ("http://host:port[/prefix]"), a
// method and a path, an answer or why there is none, by a deadline.

#include <chrono>
#include <optional>
#include <string>
#include <variant>

namespace gpumem::tool {

struct http_url {
  std::string host;    // "127.0.0.1", "::1" (brackets removed), "localhost"
  std::string port;    // "80" where the URL names none
  std::string prefix;  // a path before every route ("" or "/gpumem")
};

/// The URL's parts, or nullopt for anything but http://host[:port][/prefix].
std::optional<http_url> parse_http_url(const std::string& url);

struct http_result {
  unsigned status = 0;
  std::string body;
};

/// Sends `method` `path` (with `body`, as JSON, where non-empty) and reads the answer;
/// the answer, or a line saying why none came (cannot connect, timed out, not HTTP).
std::variant<http_result, std::string> http_request(const http_url& url, const std::string& method,
                                                     const std::string& path, const std::string& body,
                                                     std::chrono::seconds timeout);

} // namespace gpumem::tool
