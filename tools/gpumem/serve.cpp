#include "serve.hpp"

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <caf/actor_system.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/client/blocking_client.hpp"
#include "gpumem/control/server.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "runtime_options.hpp"
#include "whole_file.hpp"

namespace gpumem::tool {

int run_serve(const serve_options& options) {
  actors::gpumem_config cfg;
  auto config = read_runtime_config(cfg, options.runtime_args);
  if (!config)
    return 0;  // --help or --dump-config printed

  caf::actor_system sys{cfg};
  auto made = actors::runtime::create(sys, *config);
  if (!made) {
    spdlog::error("gpumem serve: cannot start the runtime: {}", made.error().to_string());
    return 1;
  }
  auto rt = std::move(made).value();
  spdlog::info("runtime: {}; {} device(s)", rt->backend_reason(), rt->devices().size());
  auto endpoint = client::local_endpoint(sys, *rt);

  // Held until the runtime stops; its shutdown releases them.
  client::blocking_client memory{endpoint};
  for (const auto& [tag, bytes] : options.allocations) {
    auto region = memory.allocate(bytes, tag);
    if (!region) {
      spdlog::error("gpumem serve: --allocate {}={}: {}", tag, format_bytes(bytes),
                    region.error().to_string());
      return 1;
    }
    spdlog::info("holding {} of '{}' on device {} at {:#x}", format_bytes(bytes), tag,
                 region->device, region->address);
  }
  // Freed at once: their wholly free segments stay mapped in the engine's cache.
  for (const auto& [tag, bytes] : options.cached) {
    auto region = memory.allocate(bytes, tag);
    auto freed = region ? memory.deallocate(*region) : client::result<void>{region.error()};
    if (!freed) {
      spdlog::error("gpumem serve: --cached {}={}: {}", tag, format_bytes(bytes),
                    freed.error().to_string());
      return 1;
    }
    spdlog::info("allocated and freed {} of '{}' on device {}", format_bytes(bytes), tag,
                 region->device);
  }

  boost::asio::io_context io;
  auto served = control::server::start(io.get_executor(), endpoint, config->control);
  if (!served) {
    spdlog::error("gpumem serve: {}", served.error().to_string());
    return 1;
  }
  auto& server = *served.value();
  auto where = server.local_endpoint();
  std::printf("gpumem serve: listening on http://%s:%u\n",
              where.address().is_v6() ? ("[" + where.address().to_string() + "]").c_str()
                                      : where.address().to_string().c_str(),
              static_cast<unsigned>(where.port()));
  std::fflush(stdout);
  if (!options.port_file.empty()
      && !write_whole_file(options.port_file, std::to_string(where.port()) + "\n")) {
    spdlog::error("gpumem serve: cannot write the port to '{}'", options.port_file);
    return 1;
  }

  boost::asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec)
      return;
    spdlog::info("gpumem serve: signal {}: stopping (answers the runtime owes are awaited)",
                 signal);
    server.stop();
  });
  io.run();  // until stopped and every connection has ended
  spdlog::info("gpumem serve: stopped");
  return 0;
}

} // namespace gpumem::tool
