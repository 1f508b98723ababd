#include "gpumem/control/server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include "listen_address.hpp"
#include "server_state.hpp"
#include "session.hpp"

namespace gpumem::control {

namespace asio = boost::asio;
using asio::ip::tcp;

server_state::server_state(asio::any_io_executor ex, client::endpoint ep, server_options o)
  : executor(ex), options(std::move(o)), svc(std::move(ep), ex),
    acceptor(asio::make_strand(ex)) {}

bool server_state::admit(const stream_ptr& stream, slot& where) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (stopped_ || open_.size() >= static_cast<std::size_t>(options.max_connections))
    return false;
  where = open_.insert(open_.end(), stream);
  return true;
}

void server_state::leave(slot where) {
  std::lock_guard<std::mutex> guard{mutex_};
  open_.erase(where);
}

void server_state::stop() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (std::exchange(stopped_, true))
    return;
  asio::post(acceptor.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
  });
  for (const auto& stream : open_)
    asio::post(stream->get_executor(), [stream] { stream->close(); });
}

namespace {

void log_exception(const char* what, std::exception_ptr e) {
  if (!e)
    return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    spdlog::error("control: {} ended by an exception: {}", what, x.what());
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<server_state> st) {
  for (;;) {
    boost::system::error_code ec;
    // Each connection on a strand of its own: the io_context may run on many threads.
    auto socket = co_await st->acceptor.async_accept(
      asio::any_io_executor{asio::make_strand(st->executor)},
      asio::redirect_error(asio::use_awaitable, ec));
    if (!st->acceptor.is_open())
      co_return;
    if (ec) {
      // Out of file descriptors and the like: pause rather than spin.
      spdlog::warn("control: accept failed: {}", ec.message());
      asio::steady_timer pause{st->acceptor.get_executor(), std::chrono::milliseconds{100}};
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    auto stream = std::make_shared<boost::beast::tcp_stream>(std::move(socket));
    server_state::slot where;
    if (!st->admit(stream, where)) {
      asio::co_spawn(stream->get_executor(), refuse_connection(st, stream),
                     [](std::exception_ptr e) { log_exception("a refusal", e); });
      continue;
    }
    asio::co_spawn(stream->get_executor(), serve_connection(st, stream),
                   [st, where](std::exception_ptr e) {
                     st->leave(where);
                     log_exception("a connection", e);
                   });
  }
}

} // namespace

client::result<std::unique_ptr<server>> server::start(asio::any_io_executor executor,
                                                      client::endpoint endpoint,
                                                      server_options options) {
  auto refused = [&](const std::string& why) {
    return client::failure{messages::gpumem_errc::invalid_config,
                           "gpumem.control.listen: " + why};
  };
  if (options.listen.empty())
    return refused("empty: the control plane has nowhere to listen");
  auto where = resolve_listen_address(executor, options.listen);
  if (auto* why = std::get_if<std::string>(&where))
    return refused(*why);
  const auto& address = std::get<tcp::endpoint>(where);

  auto st = std::make_shared<server_state>(executor, std::move(endpoint), std::move(options));
  boost::system::error_code ec;
  st->acceptor.open(address.protocol(), ec);
  if (!ec)
    st->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    st->acceptor.bind(address, ec);
  if (!ec)
    st->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec)
    st->bound = st->acceptor.local_endpoint(ec);
  if (ec)
    return refused("cannot listen on " + st->options.listen + ": " + ec.message());
  asio::co_spawn(st->acceptor.get_executor(), accept_loop(st),
                 [](std::exception_ptr e) { log_exception("the accept loop", e); });
  return std::unique_ptr<server>(new server(std::move(st)));
}

server::server(std::shared_ptr<server_state> state) : state_(std::move(state)) {}

server::~server() { stop(); }

tcp::endpoint server::local_endpoint() const { return state_->bound; }

void server::stop() { state_->stop(); }

} // namespace gpumem::control
