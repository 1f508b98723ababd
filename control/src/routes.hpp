#pragma once
// The routes: one table of method, path and handler; dispatch() answers each request,
// 404 for a path no route has, 405 (with Allow) for a method its route does not take,
// and a request_error a handler throws as its status and JSON.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include <string>

#include "query.hpp"
#include "reply.hpp"
#include "service.hpp"

namespace gpumem::control {

struct request {
  http::verb method = http::verb::get;
  std::string path;  // the target up to '?'
  query params;
  std::string body;
};

boost::asio::awaitable<reply> dispatch(service& svc, const request& req);

// The handlers, by file: sleep_routes.cpp (vLLM, SGLang), v1_routes.cpp, metrics.cpp.
boost::asio::awaitable<reply> sleep_route(service& svc, const request& req);
boost::asio::awaitable<reply> wake_up_route(service& svc, const request& req);
boost::asio::awaitable<reply> is_sleeping_route(service& svc, const request& req);
boost::asio::awaitable<reply> release_memory_route(service& svc, const request& req);
boost::asio::awaitable<reply> resume_memory_route(service& svc, const request& req);
boost::asio::awaitable<reply> status_route(service& svc, const request& req);
boost::asio::awaitable<reply> stats_route(service& svc, const request& req);
boost::asio::awaitable<reply> snapshot_route(service& svc, const request& req);
boost::asio::awaitable<reply> map_route(service& svc, const request& req);
boost::asio::awaitable<reply> trim_route(service& svc, const request& req);
boost::asio::awaitable<reply> defragment_route(service& svc, const request& req);
boost::asio::awaitable<reply> healthz_route(service& svc, const request& req);
boost::asio::awaitable<reply> metrics_route(service& svc, const request& req);

} // namespace gpumem::control
