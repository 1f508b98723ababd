#include "routes.hpp"

#include <array>

namespace gpumem::control {

namespace {

using handler = boost::asio::awaitable<reply> (*)(service&, const request&);

struct route {
  http::verb method;
  std::string_view path;
  handler handle;
};

const std::array<route, 13> routes{{
  {http::verb::post, "/sleep", sleep_route},
  {http::verb::post, "/wake_up", wake_up_route},
  {http::verb::get, "/is_sleeping", is_sleeping_route},
  {http::verb::post, "/release_memory_occupation", release_memory_route},
  {http::verb::post, "/resume_memory_occupation", resume_memory_route},
  {http::verb::get, "/v1/status", status_route},
  {http::verb::get, "/v1/stats", stats_route},
  {http::verb::get, "/v1/snapshot", snapshot_route},
  {http::verb::get, "/v1/map", map_route},
  {http::verb::post, "/v1/trim", trim_route},
  {http::verb::post, "/v1/defragment", defragment_route},
  {http::verb::get, "/healthz", healthz_route},
  {http::verb::get, "/metrics", metrics_route},
}};

} // namespace

boost::asio::awaitable<reply> dispatch(service& svc, const request& req) {
  std::string allow;
  for (const auto& r : routes) {
    if (r.path != req.path)
      continue;
    if (r.method != req.method) {
      allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(r.method));
      continue;
    }
    reply answer;
    try {
      answer = co_await r.handle(svc, req);
    } catch (const request_error& e) {
      answer = error_reply(e.status, e.code, e.message);
    }
    co_return answer;
  }
  if (allow.empty())
    co_return error_reply(http::status::not_found, "not_found",
                          "no route " + req.path + " (see docs/control.md)");
  auto answer = error_reply(http::status::method_not_allowed, "method_not_allowed",
                            req.path + " takes " + allow + ", not "
                              + std::string(http::to_string(req.method)));
  answer.allow = allow;
  co_return answer;
}

} // namespace gpumem::control
