#pragma once
// A value or the error that prevented it. Each layer names its own error type:
// the device layer's result<T> carries a device_error, the engine's an engine_error.

#include <utility>
#include <optional>
#include <variant>

namespace gpumem {

template <class T, class E>
class [[nodiscard]] basic_result {
public:
  basic_result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  basic_result(E error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { return std::get<1>(state_); }

private:
  std::variant<T, E> state_;
};

/// Success, or the error that prevented it.
template <class E>
class [[nodiscard]] basic_result<void, E> {
public:
  basic_result() = default;
  basic_result(E error) : error_(std::move(error)) {}

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const E& error() const { return *error_; }

private:
  std::optional<E> error_;
};

} // namespace gpumem
