#pragma once
// The Asio client, for servers on Boost.Asio: every operation takes any completion
// token (asio::use_awaitable, a callback, asio::use_future, ...) and completes with a
// result<T> (value or error, never an exception) on the handler's associated
// executor, or the client's executor where the handler has none: never on a CAF
// thread. The io_context keeps running (work is tracked) until each completion ran.
//
//   gpumem::client::asio_client c(gpumem::client::local_endpoint(sys, *rt), io.get_executor());
//   auto region = co_await c.async_allocate({64 << 20, "kv_cache"}, asio::use_awaitable);
//   if (!region) co_return region.error();
//   co_await c.async_deallocate(*region, asio::use_awaitable);
//
// Deadlines and errors are the blocking client's: each call may name a timeout after
// its token, else the endpoint's default for its kind.

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gpumem/client/connection.hpp"
#include "gpumem/client/tag_scope.hpp"

namespace gpumem::client {

class asio_client {
public:
  using executor_type = boost::asio::any_io_executor;

  /// Spawns the client's bridge in endpoint.system (which must outlive the client);
  /// completions whose handler names no executor run on `executor`.
  asio_client(endpoint ep, executor_type executor)
    : connection_(std::make_shared<connection>(std::move(ep))), executor_(std::move(executor)) {}

  executor_type get_executor() const noexcept { return executor_; }

  /// Signature void(result<region_handle>). The tag scope is read now, on this thread.
  template <class Token>
  auto async_allocate(allocation_spec spec, Token&& token, timeout t = {}) {
    auto request = to_request(std::move(spec));
    allocation_spec resolved{request.size, request.tag, request.how, request.alignment,
                             request.device_hint};
    return start<messages::region_handle>(
      std::forward<Token>(token), [t, resolved](const connection& c, auto done) mutable {
        c.allocate(std::move(resolved), t, std::move(done));
      });
  }

  /// void(result<void>)
  template <class Token>
  auto async_deallocate(messages::region_handle region, Token&& token, timeout t = {}) {
    return start<void>(std::forward<Token>(token),
                       [t, region](const connection& c, auto done) {
                         c.deallocate(region, t, std::move(done));
                       });
  }

  /// void(result<void>)
  template <class Token>
  auto async_touch(messages::region_handle region, Token&& token, timeout t = {}) {
    return start<void>(std::forward<Token>(token), [t, region](const connection& c, auto done) {
      c.touch(region, t, std::move(done));
    });
  }

  /// void(result<std::vector<region_handle>>): every allocation or none.
  template <class Token>
  auto async_allocate_batch(std::vector<allocation_spec> specs, Token&& token, timeout t = {}) {
    for (auto& s : specs)
      if (s.tag.empty())
        s.tag = current_tag();
    return start<std::vector<messages::region_handle>>(
      std::forward<Token>(token), [t, specs](const connection& c, auto done) mutable {
        c.allocate_batch(std::move(specs), t, std::move(done));
      });
  }

  /// void(result<void>)
  template <class Token>
  auto async_deallocate_batch(std::vector<messages::region_handle> regions, Token&& token,
                              timeout t = {}) {
    return start<void>(std::forward<Token>(token),
                       [t, regions](const connection& c, auto done) mutable {
                         c.deallocate_batch(std::move(regions), t, std::move(done));
                       });
  }

  /// void(result<std::vector<transition_report>>)
  template <class Token>
  auto async_sleep(std::int32_t level, std::vector<std::string> tags, Token&& token,
                   timeout t = {}) {
    return start<std::vector<messages::transition_report>>(
      std::forward<Token>(token), [t, level, tags](const connection& c, auto done) mutable {
        c.sleep(level, std::move(tags), t, std::move(done));
      });
  }

  /// void(result<std::vector<transition_report>>); level 0 backs up exactly
  /// policy.backup_tags.
  template <class Token>
  auto async_sleep(messages::sleep_policy policy, Token&& token, timeout t = {}) {
    return start<std::vector<messages::transition_report>>(
      std::forward<Token>(token), [t, policy](const connection& c, auto done) mutable {
        c.sleep(std::move(policy), t, std::move(done));
      });
  }

  /// void(result<std::vector<transition_report>>)
  template <class Token>
  auto async_wake_up(std::vector<std::string> tags, Token&& token, timeout t = {}) {
    return start<std::vector<messages::transition_report>>(
      std::forward<Token>(token), [t, tags](const connection& c, auto done) mutable {
        c.wake_up(std::move(tags), t, std::move(done));
      });
  }

  /// void(result<bool>)
  template <class Token>
  auto async_is_sleeping(std::vector<std::string> tags, Token&& token, timeout t = {}) {
    return start<bool>(std::forward<Token>(token),
                       [t, tags](const connection& c, auto done) mutable {
                         c.is_sleeping(std::move(tags), t, std::move(done));
                       });
  }

  /// void(result<cluster_statistics>)
  template <class Token>
  auto async_statistics(Token&& token, timeout t = {}) {
    return start<messages::cluster_statistics>(
      std::forward<Token>(token),
      [t](const connection& c, auto done) { c.statistics(t, std::move(done)); });
  }

  /// void(result<memory_snapshot>)
  template <class Token>
  auto async_snapshot(std::int32_t device, Token&& token, timeout t = {}) {
    return start<messages::memory_snapshot>(
      std::forward<Token>(token),
      [t, device](const connection& c, auto done) { c.snapshot(device, t, std::move(done)); });
  }

  /// void(result<trim_report>)
  template <class Token>
  auto async_trim(std::int32_t device, Token&& token, timeout t = {}) {
    return start<messages::trim_report>(
      std::forward<Token>(token),
      [t, device](const connection& c, auto done) { c.trim(device, t, std::move(done)); });
  }

  /// void(result<defragment_report>)
  template <class Token>
  auto async_defragment(std::int32_t device, Token&& token, timeout t = {}) {
    return start<messages::defragment_report>(
      std::forward<Token>(token),
      [t, device](const connection& c, auto done) { c.defragment(device, t, std::move(done)); });
  }

  /// void(result<balancer_status>)
  template <class Token>
  auto async_status(Token&& token, timeout t = {}) {
    return start<messages::balancer_status>(
      std::forward<Token>(token),
      [t](const connection& c, auto done) { c.status(t, std::move(done)); });
  }

  /// void(result<std::vector<device_info>>)
  template <class Token>
  auto async_devices(Token&& token, timeout t = {}) {
    return start<std::vector<messages::device_info>>(
      std::forward<Token>(token),
      [t](const connection& c, auto done) { c.devices(t, std::move(done)); });
  }

  /// void(result<subscription>); `on_event` runs on the client's executor.
  template <class Token>
  auto async_subscribe(std::function<void(const messages::pressure_event&)> on_event,
                       std::int32_t device, Token&& token, timeout t = {}) {
    std::function<void(const messages::pressure_event&)> posted;
    if (on_event)
      posted = [ex = executor_, on_event](const messages::pressure_event& e) {
        boost::asio::post(ex, [on_event, e] { on_event(e); });
      };
    return start<subscription>(std::forward<Token>(token),
                               [t, device, posted](const connection& c, auto done) {
                                 c.subscribe(posted, device, t, std::move(done));
                               });
  }

  /// Tags this thread's allocations that name no tag until the scope ends (a
  /// coroutine that suspends inside it should name its tags instead).
  [[nodiscard]] tag_scope scope(std::string tag) const { return tag_scope{std::move(tag)}; }

  const connection& core() const noexcept { return *connection_; }

private:
  /// Initiates the operation: `begin(connection, callback)` starts it; the callback,
  /// on a CAF thread, posts the handler with the result to the handler's executor.
  template <class T, class Token, class Begin>
  auto start(Token&& token, Begin begin) {
    return boost::asio::async_initiate<Token, void(result<T>)>(
      [conn = connection_, fallback = executor_, begin = std::move(begin)](auto handler) mutable {
        using handler_type = decltype(handler);
        auto shared = std::make_shared<handler_type>(std::move(handler));
        auto ex = boost::asio::get_associated_executor(*shared, fallback);
        auto work = std::make_shared<boost::asio::executor_work_guard<decltype(ex)>>(ex);
        begin(*conn, callback<T>{[shared, ex, work](result<T> r) {
          boost::asio::post(ex, [shared, work, r = std::move(r)]() mutable {
            (*shared)(std::move(r));
          });
        }});
      },
      token);
  }

  // Shared with each operation in flight: a completion may outlive the client.
  std::shared_ptr<connection> connection_;
  executor_type executor_;
};

} // namespace gpumem::client
