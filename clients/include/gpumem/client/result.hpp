#pragma once
// What every client call returns: a value, or an error carrying the protocol's code
// (messages::gpumem_errc) and its message. Failures of the transport are mapped onto
// the protocol's codes too: a deadline that passed is `timeout`, a runtime that is
// gone or answered something unexpected is `device_failure` (the message says which).

#include <string>
#include <utility>
#include <variant>

#include <caf/error.hpp>

#include "gpumem/messages/errors.hpp"

namespace gpumem::client {

struct failure {
  messages::gpumem_errc code = messages::gpumem_errc::device_failure;
  std::string message;

  /// "out_of_memory: <message>" (the code's name alone where there is no message).
  std::string to_string() const;
};

/// The client's error for any caf::error: a gpumem error keeps its code and message;
/// CAF's request_timeout becomes timeout; a receiver that is gone becomes
/// node_unreachable where it lived on another node (`remote`: its link was lost);
/// anything else device_failure naming it.
failure to_failure(const caf::error& e, bool remote = false);

template <class T>
class [[nodiscard]] result {
public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(failure e) : state_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  /// The value; calling it on an error is a programming error (std::bad_variant_access).
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const client::failure& error() const { return std::get<1>(state_); }

private:
  std::variant<T, client::failure> state_;
};

/// Success without a value, or an error.
template <>
class [[nodiscard]] result<void> {
public:
  result() = default;
  result(client::failure e) : error_(std::move(e)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const client::failure& error() const { return error_; }

private:
  client::failure error_;
  bool failed_ = false;
};

} // namespace gpumem::client
