// An Asio server whose request handlers co_await their GPU memory: each synthetic
// request gets a KV-cache buffer for its tokens, "generates", and frees it. The
// handlers never see CAF; every completion runs on the server's io_context.

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <iterator>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/scheduler.hpp"
#include "gpumem/client/asio_client.hpp"
#include "gpumem/messages/register.hpp"

namespace asio = boost::asio;
using namespace gpumem;
using namespace std::chrono_literals;

struct request {
  int id;
  std::uint64_t tokens;
};

// One request handler: allocate, work, free; errors are values it reports.
asio::awaitable<bool> handle(client::asio_client& memory, request r) {
  constexpr std::uint64_t bytes_per_token = 16 * 1024;
  auto kv = co_await memory.async_allocate({r.tokens * bytes_per_token, "kv_cache"},
                                           asio::use_awaitable);
  if (!kv) {
    std::printf("request %d: no memory: %s\n", r.id, kv.error().to_string().c_str());
    co_return false;
  }
  asio::steady_timer generate{co_await asio::this_coro::executor, 5ms};
  co_await generate.async_wait(asio::use_awaitable);  // the model would run here
  auto freed = co_await memory.async_deallocate(*kv, asio::use_awaitable);
  std::printf("request %d: %llu tokens served from device %d\n", r.id,
              static_cast<unsigned long long>(r.tokens), kv->device);
  co_return freed.ok();
}

int main() {
  caf::actor_system_config cfg;
  messages::register_protocol(cfg);
  actors::use_prompt_wakeups(cfg);  // a request from outside CAF is not left waiting
  caf::actor_system sys{cfg};
  actors::runtime_config config;
  config.backend = actors::backend_kind::host;
  config.log_level = spdlog::level::warn;
  auto rt = actors::runtime::create(sys, config);
  if (!rt)
    return 1;

  asio::io_context io;
  client::asio_client memory{client::local_endpoint(sys, *rt.value()), io.get_executor()};
  int served = 0;
  const request requests[] = {{1, 512}, {2, 2048}, {3, 128}, {4, 4096}, {5, 1024}};
  for (const auto& r : requests)
    asio::co_spawn(io, handle(memory, r), [&served](std::exception_ptr e, bool ok) {
      served += !e && ok;
    });
  io.run();  // returns once every handler finished

  std::printf("served %d of %zu requests\n", served, std::size(requests));
  return served == static_cast<int>(std::size(requests)) ? 0 : 1;
}
