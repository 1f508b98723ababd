#pragma once
// What a route answers, and every error as HTTP: {"error": code, "message": text} with
// the status that fits the code. One place maps the protocol's codes to statuses.

#include <boost/beast/http/status.hpp>

#include <nlohmann/json.hpp>

#include <string>

#include "gpumem/client/result.hpp"

namespace gpumem::control {

namespace http = boost::beast::http;

struct reply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  // 405: the methods the path takes
};

/// A request refused before it reached the runtime: thrown by the parsers of query
/// strings and bodies, answered by the dispatcher. Nothing has changed.
struct request_error {
  http::status status = http::status::bad_request;
  std::string code;
  std::string message;
};

reply json_reply(const nlohmann::json& body, http::status status = http::status::ok);
reply error_reply(http::status status, const std::string& code, const std::string& message);

/// The status for a code of the protocol: 400 for a bad value, 409 for a state that
/// does not allow it (a transition running, a tag asleep), 507 for memory the device
/// lacks, 503 for a device or runtime that failed or did not answer in time.
http::status status_of(messages::gpumem_errc code);

/// A failure the runtime (or the client, for its deadline) answered.
reply failure_reply(const client::failure& f);

} // namespace gpumem::control
