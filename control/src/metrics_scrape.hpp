#pragma once
// One scrape of the runtime for /metrics: statistics, status and devices, and the
// bytes each tag keeps in host memory while it sleeps.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gpumem/client/asio_client.hpp"

namespace gpumem::control {

struct scrape {
  messages::cluster_statistics stats;
  messages::balancer_status status;
  std::vector<messages::device_info> devices;
  /// device -> tag -> bytes of its sleeping regions kept in host memory.
  std::map<std::int32_t, std::map<std::string, std::uint64_t>> backed_up;
};

/// The statistics do not split a tag's sleeping bytes into kept and discarded: those
/// come from the snapshots of the devices where a tag sleeps (an awake runtime's
/// scrape takes none, since a snapshot lists every region).
boost::asio::awaitable<client::result<scrape>> take_scrape(client::asio_client& memory);

} // namespace gpumem::control
