#pragma once
// The bridge: one long-lived event-based actor per client through which threads that
// are not actors send requests. A caller hands it a job (anon_send, no scoped_actor);
// the bridge sends the job's typed request with the job's deadline and completes the
// job's callback with the answer, on the bridge's CAF thread. A job that is destroyed
// unanswered (the bridge stopped, or the message was dropped) completes with an error
// from its destructor, so no callback is ever lost.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>

#include "gpumem/client/result.hpp"

namespace gpumem::client::detail {

struct job : std::enable_shared_from_this<job> {
  virtual ~job() = default;
  /// Runs on the bridge actor: sends the request and arranges for its answer.
  virtual void start(caf::event_based_actor* self) = 0;
};
using job_ptr = std::shared_ptr<job>;

} // namespace gpumem::client::detail

// Jobs never leave the process: no serialization needed.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(gpumem::client::detail::job_ptr)

namespace gpumem::client::detail {

template <class T>
using callback = std::function<void(result<T>)>;

/// One request of reply type R to `dest`, answered through `done` exactly once.
template <class R, class Handle, class... Ts>
class request_job final : public job {
public:
  request_job(Handle dest, caf::duration timeout, callback<R> done, Ts... xs)
    : dest_(std::move(dest)), timeout_(timeout), done_(std::move(done)),
      args_(std::move(xs)...) {}

  ~request_job() override {
    finish(failure{messages::gpumem_errc::device_failure,
                 "the client stopped before the runtime answered"});
  }

  void start(caf::event_based_actor* self) override {
    auto me = std::static_pointer_cast<request_job>(shared_from_this());
    const bool remote = dest_ && dest_.node() != self->node();
    std::apply(
      [&](Ts&... xs) {
        self->request(dest_, timeout_, std::move(xs)...)
          .then([me](R& r) { me->finish(result<R>{std::move(r)}); },
                [me, remote](caf::error& e) { me->finish(to_failure(e, remote)); });
      },
      args_);
  }

private:
  void finish(result<R> r) {
    if (auto done = std::exchange(done_, nullptr))
      done(std::move(r));
  }

  Handle dest_;
  caf::duration timeout_;
  callback<R> done_;
  std::tuple<Ts...> args_;
};

class bridge {
public:
  explicit bridge(caf::actor_system& sys);
  /// Stops the bridge actor: what it still waits for completes with an error.
  ~bridge();
  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  void submit(job_ptr j) const;

  template <class R, class Handle, class... Ts>
  void request(const Handle& dest, caf::duration timeout, callback<R> done,
               Ts... xs) const {
    submit(std::make_shared<request_job<R, Handle, Ts...>>(dest, timeout, std::move(done),
                                                           std::move(xs)...));
  }

private:
  caf::actor actor_;
};

} // namespace gpumem::client::detail
