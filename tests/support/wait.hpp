#pragma once
// Waiting on asynchronous work in tests: bounded by wall-clock time, never by a count of
// polls. A poll takes nanoseconds while a copy into fresh memory on a loaded machine can
// take seconds, so a count that suffices on one machine runs out on another.

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <catch2/catch.hpp>

namespace gpumem::test {

/// How long a test waits for anything asynchronous: far beyond what any step needs on a
/// slow, loaded machine, short enough that a stuck test fails well inside ctest's limit.
inline constexpr std::chrono::seconds wait_limit{60};

/// How a wait ended.
struct wait_outcome {
  bool done = false;
  long polls = 0;
  double seconds = 0;
};

/// Calls `done()` until it returns true or `limit` has passed. Between polls it yields
/// for the first millisecond (short copies finish at once), then sleeps briefly, backing
/// off to 1 ms, so that the threads doing the work get the cores.
template <class Done>
wait_outcome poll_until(Done&& done, std::chrono::nanoseconds limit = wait_limit) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto pause = std::chrono::microseconds{20};
  wait_outcome out;
  while (true) {
    ++out.polls;
    out.done = done();
    const auto spent = clock::now() - start;
    out.seconds = std::chrono::duration<double>(spent).count();
    if (out.done || spent >= limit)
      return out;
    if (spent < std::chrono::milliseconds{1}) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds{1000});
    }
  }
}

/// Waits until `done()` holds; past `limit` fails the test, naming what it waited for,
/// how long and how many polls, and `progress()`: how far the work got.
template <class Done, class Progress>
void wait_until(std::string_view what, Done&& done, Progress&& progress,
                std::chrono::nanoseconds limit = wait_limit) {
  auto r = poll_until(done, limit);
  if (!r.done)
    FAIL("gave up waiting for " << what << " after " << r.seconds << " s and " << r.polls
                                << " polls; " << progress());
}

template <class Done>
void wait_until(std::string_view what, Done&& done,
                std::chrono::nanoseconds limit = wait_limit) {
  wait_until(what, done, [] { return std::string{"no progress to report"}; }, limit);
}

} // namespace gpumem::test
