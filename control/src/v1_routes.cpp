// gpumem's own routes: status, statistics, a device's snapshot, the memory map, trim
// and defragment (one device, or each in turn), and a health check.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/use_awaitable.hpp>

#include "gpumem/control/map_page.hpp"
#include "gpumem/messages/json.hpp"
#include "routes.hpp"

namespace gpumem::control {

namespace asio = boost::asio;
namespace m = messages;
using nlohmann::json;

namespace {

std::int32_t device_count(const service& svc) {
  return static_cast<std::int32_t>(svc.memory.core().target().allocators.size());
}

/// ?device=N, checked against the devices there are; nullopt: every device.
std::optional<std::int32_t> device_param(const service& svc, const request& req) {
  auto device = req.params.integer("device", 0, std::numeric_limits<std::int32_t>::max());
  if (device && *device >= device_count(svc))
    throw request_error{http::status::bad_request, "unknown_device",
                        "no device " + std::to_string(*device) + " (this runtime has "
                          + std::to_string(device_count(svc)) + ")"};
  if (!device)
    return std::nullopt;
  return static_cast<std::int32_t>(*device);
}

/// Runs `one(device)` on the device asked for, or on each in turn; the reports, or
/// the first failure (the devices before it keep what they did: trims lose nothing).
template <class Report, class One>
asio::awaitable<std::variant<std::vector<Report>, reply>> each_device(service& svc,
                                                                      const request& req,
                                                                      One one) {
  std::vector<Report> reports;
  auto only = device_param(svc, req);
  for (std::int32_t d = only.value_or(0); d < (only ? *only + 1 : device_count(svc)); ++d) {
    auto r = co_await one(d);
    if (!r)
      co_return failure_reply(r.error());
    reports.push_back(std::move(r).value());
  }
  co_return reports;
}

} // namespace

asio::awaitable<reply> status_route(service& svc, const request& req) {
  req.params.allow_only({});
  auto status = co_await svc.memory.async_status(asio::use_awaitable);
  if (!status)
    co_return failure_reply(status.error());
  auto devices = co_await svc.memory.async_devices(asio::use_awaitable);
  if (!devices)
    co_return failure_reply(devices.error());
  auto body = to_json(*status, *devices);
  body["is_sleeping"] = client::shows_sleeping(*status, {});
  co_return json_reply(body);
}

asio::awaitable<reply> stats_route(service& svc, const request& req) {
  req.params.allow_only({});
  auto stats = co_await svc.memory.async_statistics(asio::use_awaitable);
  if (!stats)
    co_return failure_reply(stats.error());
  co_return json_reply(to_json(*stats));
}

asio::awaitable<reply> snapshot_route(service& svc, const request& req) {
  req.params.allow_only({"device"});
  auto device = device_param(svc, req);
  if (!device)
    throw request_error{http::status::bad_request, "bad_parameter",
                        "which device? /v1/snapshot?device=N (0 to "
                          + std::to_string(device_count(svc) - 1) + ")"};
  auto snapshot = co_await svc.memory.async_snapshot(*device, asio::use_awaitable);
  if (!snapshot)
    co_return failure_reply(snapshot.error());
  reply r;
  r.body = std::move(snapshot->json);  // the engine's documented JSON (docs/snapshot.md)
  r.body += '\n';
  co_return r;
}

// The memory map page (map_page.hpp) of one device or of every device.
asio::awaitable<reply> map_route(service& svc, const request& req) {
  req.params.allow_only({"device"});
  auto done = co_await each_device<m::memory_snapshot>(svc, req, [&](std::int32_t d) {
    return svc.memory.async_snapshot(d, asio::use_awaitable);
  });
  if (auto* failed = std::get_if<reply>(&done))
    co_return std::move(*failed);
  std::vector<map_snapshot> snapshots;
  for (auto& s : std::get<0>(done))
    snapshots.push_back({"device " + std::to_string(s.device), std::move(s.json)});
  reply r;
  try {
    r.body = map_page(snapshots, "gpumem memory map");
  } catch (const std::invalid_argument& e) {  // the runtime's own snapshots: a bug
    co_return error_reply(http::status::internal_server_error, "internal_error", e.what());
  }
  r.content_type = "text/html; charset=utf-8";
  co_return r;
}

asio::awaitable<reply> trim_route(service& svc, const request& req) {
  req.params.allow_only({"device"});
  auto done = co_await each_device<m::trim_report>(svc, req, [&](std::int32_t d) {
    return svc.memory.async_trim(d, asio::use_awaitable);
  });
  if (auto* failed = std::get_if<reply>(&done))
    co_return std::move(*failed);
  json body{{"bytes_released", 0}, {"segments_released", 0}, {"devices", json::array()}};
  for (const auto& r : std::get<0>(done)) {
    body["bytes_released"] = body["bytes_released"].get<std::uint64_t>() + r.bytes_released;
    body["segments_released"] =
      body["segments_released"].get<std::uint64_t>() + r.segments_released;
    body["devices"].push_back(to_json(r));
  }
  co_return json_reply(body);
}

asio::awaitable<reply> defragment_route(service& svc, const request& req) {
  req.params.allow_only({"device"});
  auto done = co_await each_device<m::defragment_report>(svc, req, [&](std::int32_t d) {
    return svc.memory.async_defragment(d, asio::use_awaitable);
  });
  if (auto* failed = std::get_if<reply>(&done))
    co_return std::move(*failed);
  std::uint64_t released = 0, segments = 0;
  json devices = json::array();
  for (const auto& r : std::get<0>(done)) {
    released += r.bytes_released_cached + r.bytes_released_tails;
    segments += r.segments_released;
    devices.push_back(to_json(r));
  }
  co_return json_reply(
    {{"bytes_released", released}, {"segments_released", segments}, {"devices", devices}});
}

// Healthy: the runtime answers and no device is lost (a lost device needs a restart).
asio::awaitable<reply> healthz_route(service& svc, const request& req) {
  req.params.allow_only({});
  auto status = co_await svc.memory.async_status(asio::use_awaitable);
  if (!status)
    co_return failure_reply(status.error());
  for (const auto& d : status->devices)
    if (!d.lost.empty())
      co_return error_reply(http::status::service_unavailable, "device_failure",
                            "device " + std::to_string(d.device) + " is lost: " + d.lost);
  co_return json_reply({{"status", "ok"}, {"devices", status->devices.size()}});
}

} // namespace gpumem::control
