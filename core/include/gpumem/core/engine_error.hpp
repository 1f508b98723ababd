#pragma once
// The engine's errors: one code per distinct failure, a message with the figures a
// user needs, and the device layer's error where one caused it.

#include <optional>
#include <string>

#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/cuda/device_error.hpp"

namespace gpumem::core {

enum class engine_errc : int {
  zero_size = 1,            // an allocation of 0 bytes
  too_large,                // more than the device could ever hold
  invalid_alignment,        // not a power of two, or beyond the granularity
  unknown_strategy,         // a strategy name that is not pooled, dedicated or first_fit
  invalid_tag,              // an empty tag name or one that names no pool
  unknown_region,           // no live region with that id or address
  double_free,              // the region was live once and has been freed
  out_of_memory,            // the device cannot back the request, even after freeing caches
  tag_asleep,               // the tag's memory is released by a sleep
  transition_in_progress,   // a sleep or wake is running; retry when it is done
  invalid_transition,       // the engine's or a tag's state does not allow it
  insufficient_memory,      // wake admission: the device lacks the memory plus margin
  invalid_config,           // an engine_config field out of range
  device_failure,           // the device layer failed; device() has CUDA's error
};

/// "out_of_memory", for logs and protocol messages.
const char* to_string(engine_errc code) noexcept;

class engine_error {
public:
  engine_error(engine_errc code, std::string message,
               std::optional<cuda::device_error> device = std::nullopt)
    : code_(code), message_(std::move(message)), device_(std::move(device)) {}

  engine_errc code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  const std::optional<cuda::device_error>& device() const noexcept { return device_; }
  /// "out_of_memory: ..." for logs and test output.
  std::string to_string() const { return std::string(core::to_string(code_)) + ": " + message_; }

private:
  engine_errc code_;
  std::string message_;
  std::optional<cuda::device_error> device_;
};

template <class T>
using engine_result = basic_result<T, engine_error>;

} // namespace gpumem::core
