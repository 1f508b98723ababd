#include "listening.hpp"

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <spdlog/spdlog.h>

#include <cstdio>

#include "whole_file.hpp"

namespace gpumem::tool {

std::string address_of(const actors::listen_address& where, std::uint16_t port) {
  auto host = where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host;
  return host + ":" + std::to_string(port);
}

bool announce(const announcement& a, const std::string& port_file) {
  if (!a.where.loopback && !a.tls)
    spdlog::warn("{}: listening beyond loopback without TLS (--insecure): any peer that reaches "
                 "{} can {}",
                 a.who, address_of(a.where, a.port), a.exposed);
  std::printf("%.*s: listening on %s (%s)%.*s\n", static_cast<int>(a.who.size()), a.who.data(),
              address_of(a.where, a.port).c_str(), a.tls ? "mutual TLS" : "no TLS",
              static_cast<int>(a.detail.size()), a.detail.data());
  std::fflush(stdout);
  if (!port_file.empty() && !write_whole_file(port_file, std::to_string(a.port) + "\n")) {
    spdlog::error("{}: cannot write the port to '{}'", a.who, port_file);
    return false;
  }
  return true;
}

void wait_for_stop_signal(std::string_view who) {
  boost::asio::io_context io;
  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([who](const boost::system::error_code& ec, int signal) {
    if (!ec)
      spdlog::info("{}: signal {}: stopping", who, signal);
  });
  io.run();  // until the signal
}

} // namespace gpumem::tool
