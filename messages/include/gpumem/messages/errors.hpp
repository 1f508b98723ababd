#pragma once
// Every error the runtime answers: one enum, one CAF error category ("gpumem").
// A failed request arrives as a caf::error whose code() is a gpumem_errc, whose
// category() is error_category, and whose context holds one string, the message.
// The first fourteen codes equal core::engine_errc's values, so the actors convert
// with a cast (they static_assert it); the rest belong to the actor layer.

#include <cstdint>
#include <optional>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace gpumem::messages {

enum class gpumem_errc : std::uint8_t {
  // 0 means "no error" to CAF: never used.
  zero_size = 1,           // an allocation of 0 bytes
  too_large,               // more than the device could ever hold
  invalid_alignment,       // not a power of two, or beyond the granularity
  unknown_strategy,        // a strategy the engine does not know
  invalid_tag,             // an empty tag name or one that names no pool
  unknown_region,          // no live region with that id or address
  double_free,             // the region was live once and has been freed
  out_of_memory,           // the device cannot back the request, even after freeing caches
  tag_asleep,              // the tag's memory is released by a sleep
  transition_in_progress,  // a sleep or wake is running; retry when it is done
  invalid_transition,      // the engine's or a tag's state does not allow it
  insufficient_memory,     // wake admission: the device lacks the memory plus margin
  invalid_config,          // a field out of range (also: an unknown sleep level)
  device_failure,          // the device layer failed; the message has the driver's error
  // -- actor layer --
  device_asleep,        // the device sleeps and the request needs it awake
  unknown_device,       // no device with that number behind this actor
  no_device_available,  // the balancer found no device that could take the request
  timeout,              // a device did not answer in time
  rolled_back,          // part of an all-or-nothing operation failed; the rest was undone
  // -- nodes --
  node_unreachable,  // no node answered at that address, or the link to it was lost
};

/// The category atom of every gpumem error.
inline constexpr caf::atom_value error_category = caf::atom("gpumem");

/// The largest code, for loops and range checks.
inline constexpr gpumem_errc last_errc = gpumem_errc::node_unreachable;

/// "out_of_memory"; "unknown" for a value outside the enum.
inline const char* to_string(gpumem_errc code) noexcept {
  switch (code) {
    case gpumem_errc::zero_size: return "zero_size";
    case gpumem_errc::too_large: return "too_large";
    case gpumem_errc::invalid_alignment: return "invalid_alignment";
    case gpumem_errc::unknown_strategy: return "unknown_strategy";
    case gpumem_errc::invalid_tag: return "invalid_tag";
    case gpumem_errc::unknown_region: return "unknown_region";
    case gpumem_errc::double_free: return "double_free";
    case gpumem_errc::out_of_memory: return "out_of_memory";
    case gpumem_errc::tag_asleep: return "tag_asleep";
    case gpumem_errc::transition_in_progress: return "transition_in_progress";
    case gpumem_errc::invalid_transition: return "invalid_transition";
    case gpumem_errc::insufficient_memory: return "insufficient_memory";
    case gpumem_errc::invalid_config: return "invalid_config";
    case gpumem_errc::device_failure: return "device_failure";
    case gpumem_errc::device_asleep: return "device_asleep";
    case gpumem_errc::unknown_device: return "unknown_device";
    case gpumem_errc::no_device_available: return "no_device_available";
    case gpumem_errc::timeout: return "timeout";
    case gpumem_errc::rolled_back: return "rolled_back";
    case gpumem_errc::node_unreachable: return "node_unreachable";
  }
  return "unknown";
}

/// The code named by to_string; nullopt for any other text.
inline std::optional<gpumem_errc> from_string(const std::string& name) {
  for (auto i = 1; i <= static_cast<int>(last_errc); ++i) {
    auto code = static_cast<gpumem_errc>(i);
    if (name == to_string(code))
      return code;
  }
  return std::nullopt;
}

// Both make_error overloads must be declared before anything compares a caf::error
// with a gpumem_errc: CAF detects (and caches) make_error when `==` is first used.

/// The error without a message; lets a handler `return gpumem_errc::...;`.
inline caf::error make_error(gpumem_errc code) {
  return caf::error{static_cast<std::uint8_t>(code), error_category};
}

/// The error as the runtime answers it: code, category, and a message with figures.
inline caf::error make_error(gpumem_errc code, std::string message) {
  return caf::error{static_cast<std::uint8_t>(code), error_category,
                    caf::make_message(std::move(message))};
}

/// The gpumem code of `e`; nullopt when `e` is empty or of another category.
inline std::optional<gpumem_errc> gpumem_code(const caf::error& e) {
  if (!e || e.category() != error_category)
    return std::nullopt;
  return static_cast<gpumem_errc>(e.code());
}

/// The message make_error put in `e`'s context; empty when there is none.
inline std::string error_message(const caf::error& e) {
  const auto& ctx = e.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return {};
}

/// "out_of_memory: <message>", or just the name without a message. The renderer
/// register_protocol() installs for the category (caf::actor_system::render).
inline std::string render_error(std::uint8_t code, caf::atom_value, const caf::message& ctx) {
  std::string result = to_string(static_cast<gpumem_errc>(code));
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  } else if (!ctx.empty()) {
    result += ": ";
    result += caf::to_string(ctx);
  }
  return result;
}

} // namespace gpumem::messages
