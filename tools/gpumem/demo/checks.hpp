#pragma once
// What the serving day's steps check with: a failed check is logged and counted (the
// day goes on, so that one run shows every problem), a request to the runtime is a
// blocking ask whose error counts as a failure, and a wait for something the actors
// do asynchronously polls until a deadline.

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../step_timing.hpp"
#include "gpumem/actors/runtime.hpp"
#include "report.hpp"

namespace gpumem::tool::demo {

struct demo_context {
  caf::actor_system& sys;
  actors::runtime& rt;
  std::chrono::milliseconds timeout{30000};
  int failures = 0;
  std::vector<step_line> report;

  demo_context(caf::actor_system& s, actors::runtime& r) : sys(s), rt(r) {}

  void fail(const std::string& what) {
    ++failures;
    spdlog::error("CHECK FAILED: {}", what);
  }

  /// A blocking request; the value, or nullopt after logging the error as a failure.
  template <class T, class Handle, class... Ts>
  std::optional<T> ask(const Handle& to, const char* what, Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<T> value;
    std::string error;
    self->request(to, caf::duration{timeout}, std::forward<Ts>(xs)...)
      .receive([&](T& x) { value = std::move(x); },
               [&](caf::error& e) { error = sys.render(e); });
    if (!value)
      fail(std::string(what) + ": " + error);
    return value;
  }
};

/// Polls `sample()` until `done` holds of it; the last sample, or nullopt on timeout.
/// The allocators react asynchronously, so the demo waits for what it reports.
template <class Sample, class Done>
auto wait_until(std::chrono::milliseconds limit, Sample sample, Done done)
  -> std::optional<typename std::invoke_result_t<Sample>::value_type> {
  auto deadline = clock_type::now() + limit;
  while (clock_type::now() < deadline) {
    auto s = sample();
    if (!s)
      return std::nullopt;
    if (done(*s))
      return s;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return std::nullopt;
}

} // namespace gpumem::tool::demo
