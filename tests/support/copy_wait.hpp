#pragma once
// Waiting on one asynchronous copy of the device layer, bounded by time: the copy is
// polled with ready() until it is done, and only then asked for its outcome, so a copy
// that never finishes fails the test with a message instead of hanging it.

#include <string_view>

#include "gpumem/cuda/device_backend.hpp"
#include "support/wait.hpp"

namespace gpumem::test {

/// The copy's outcome once it is done; fails the test after wait_limit.
inline cuda::status await_copy(cuda::copy_completion& copy, std::string_view what = "a copy") {
  wait_until(what, [&] { return copy.ready(); });
  return copy.wait();
}

/// The same, off the test's thread (Catch's assertions are not thread-safe there): an
/// error if the copy is not done within wait_limit.
inline cuda::status await_copy_quietly(cuda::copy_completion& copy) {
  if (!poll_until([&] { return copy.ready(); }).done)
    return cuda::device_error{cuda::error_code::unknown, "the copy was not done within the test's wait limit"};
  return copy.wait();
}

} // namespace gpumem::test
