#pragma once
// A request's query string: name=value pairs in order, percent-decoded ('+' is a
// space), names that may repeat (vLLM's tags=a&tags=b). Bad input is a request_error.

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpumem::control {

class query {
public:
  /// The pairs of "a=1&b=x%20y"; refuses a malformed percent escape.
  static query parse(std::string_view text);

  /// Refuses any name but these (a typo must not fall back to a default).
  void allow_only(std::initializer_list<std::string_view> names) const;
  /// Every value of `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  /// The value of `name`, or nullopt; refuses it given twice.
  std::optional<std::string> one(std::string_view name) const;
  /// The value of `name` as an integer from `least` to `most`, or nullopt.
  std::optional<long> integer(std::string_view name, long least, long most) const;

private:
  std::vector<std::pair<std::string, std::string>> params_;
};

/// Tag names from a query or a body: each non-empty, or a request_error naming `where`.
std::vector<std::string> checked_tags(std::vector<std::string> tags, const std::string& where);

} // namespace gpumem::control
