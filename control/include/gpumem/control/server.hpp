#pragma once
// The HTTP control plane: a server on an io_context its host owns (any number of
// threads may run it), serving a runtime through the protocol as any client does.
//
//   boost::asio::io_context io;
//   auto served = gpumem::control::server::start(io.get_executor(), endpoint, options);
//   if (!served) { log(served.error().to_string()); return 1; }
//   std::printf("listening on port %u\n", (*served)->port());
//   io.run();                       // until (*served)->stop() and the last answer
//
// Routes: vLLM's POST /sleep?level=0|1|2[&tags=T...], POST /wake_up[?tags=T...],
// GET /is_sleeping; SGLang's POST /release_memory_occupation and
// /resume_memory_occupation with an optional body {"tags": [...]}; gpumem's own
// GET /v1/status, /v1/stats, /v1/snapshot?device=N, /v1/map[?device=N] (the memory
// map, HTML: map_page.hpp), POST /v1/trim, /v1/defragment (?device=N, else every
// device), GET /healthz and GET /metrics (Prometheus text).
// Every answer is JSON (but /metrics and /v1/map); an error is {"error": code,
// "message": text} with 400, 404, 405, 409, 413, 500, 503 or 507 (docs/control.md).

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>

#include "gpumem/client/endpoint.hpp"
#include "gpumem/client/result.hpp"
#include "gpumem/control/server_options.hpp"

namespace gpumem::control {

struct server_state;

class server {
public:
  /// Listens on options.listen and starts accepting on `executor`. A listen address
  /// that is empty, cannot be resolved or bound is an invalid_config failure naming it.
  /// endpoint.system must outlive the server.
  static client::result<std::unique_ptr<server>> start(boost::asio::any_io_executor executor,
                                                       client::endpoint endpoint,
                                                       server_options options);

  /// stop().
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Where it listens (the port chosen where options.listen named port 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  std::uint16_t port() const { return local_endpoint().port(); }

  /// Stops accepting and closes every connection; an answer the runtime still owes
  /// is awaited and dropped. The io_context runs out of work once those arrive.
  /// Idempotent; any thread.
  void stop();

private:
  explicit server(std::shared_ptr<server_state> state);
  std::shared_ptr<server_state> state_;
};

} // namespace gpumem::control
