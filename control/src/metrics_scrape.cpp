#include "metrics_scrape.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <nlohmann/json.hpp>

namespace gpumem::control {

namespace asio = boost::asio;

namespace {

/// Sums the `requested` bytes (what a backup holds) of each tag's backed-up regions.
std::map<std::string, std::uint64_t> backed_up_by_tag(const std::string& snapshot_json) {
  std::map<std::string, std::uint64_t> bytes;
  auto doc = nlohmann::json::parse(snapshot_json, nullptr, false);
  if (doc.is_discarded() || !doc.contains("regions"))
    return bytes;
  for (const auto& r : doc["regions"])
    if (r.value("state", "") == "backed_up")
      bytes[r.value("tag", "")] += r.value("requested", std::uint64_t{0});
  return bytes;
}

} // namespace

asio::awaitable<client::result<scrape>> take_scrape(client::asio_client& memory) {
  scrape s;
  auto stats = co_await memory.async_statistics(asio::use_awaitable);
  if (!stats)
    co_return stats.error();
  auto status = co_await memory.async_status(asio::use_awaitable);
  if (!status)
    co_return status.error();
  auto devices = co_await memory.async_devices(asio::use_awaitable);
  if (!devices)
    co_return devices.error();
  s.stats = std::move(stats).value();
  s.status = std::move(status).value();
  s.devices = std::move(devices).value();
  for (const auto& d : s.status.devices) {
    if (d.asleep_tags.empty())
      continue;
    auto snapshot = co_await memory.async_snapshot(d.device, asio::use_awaitable);
    if (!snapshot)
      co_return snapshot.error();
    s.backed_up[d.device] = backed_up_by_tag(snapshot->json);
  }
  co_return s;
}

} // namespace gpumem::control
