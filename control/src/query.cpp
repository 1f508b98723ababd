#include "query.hpp"

#include <algorithm>
#include <charconv>

#include "reply.hpp"

namespace gpumem::control {

namespace {

[[noreturn]] void bad(const std::string& code, const std::string& message) {
  throw request_error{http::status::bad_request, code, message};
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::string decoded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
      int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
      if (lo < 0)
        bad("bad_parameter", "malformed percent escape in the query string: \""
                               + std::string(text.substr(i, 3)) + "\"");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

} // namespace

query query::parse(std::string_view text) {
  query q;
  while (!text.empty()) {
    auto amp = std::min(text.find('&'), text.size());
    auto pair = text.substr(0, amp);
    text.remove_prefix(std::min(amp + 1, text.size()));
    if (pair.empty())
      continue;  // "a=1&&b=2"
    auto eq = std::min(pair.find('='), pair.size());
    auto name = decoded(pair.substr(0, eq));
    auto value = decoded(pair.substr(std::min(eq + 1, pair.size())));
    if (name.empty())
      bad("bad_parameter", "a query parameter without a name");
    q.params_.emplace_back(std::move(name), std::move(value));
  }
  return q;
}

void query::allow_only(std::initializer_list<std::string_view> names) const {
  for (const auto& [name, _] : params_)
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (auto n : names)
        known += (known.empty() ? "" : ", ") + std::string(n);
      bad("unknown_parameter", "unknown query parameter '" + name + "'"
                                 + (known.empty() ? "; this route takes none"
                                                  : "; this route takes " + known));
    }
}

std::vector<std::string> query::all(std::string_view name) const {
  std::vector<std::string> values;
  for (const auto& [n, v] : params_)
    if (n == name)
      values.push_back(v);
  return values;
}

std::optional<std::string> query::one(std::string_view name) const {
  auto values = all(name);
  if (values.size() > 1)
    bad("bad_parameter", "query parameter '" + std::string(name) + "' given "
                           + std::to_string(values.size()) + " times; give it once");
  if (values.empty())
    return std::nullopt;
  return values.front();
}

std::optional<long> query::integer(std::string_view name, long least, long most) const {
  auto text = one(name);
  if (!text)
    return std::nullopt;
  long value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc{} || end != text->data() + text->size() || value < least
      || value > most)
    bad("bad_parameter", "query parameter '" + std::string(name) + "' must be an integer from "
                           + std::to_string(least) + " to " + std::to_string(most) + ", got \""
                           + *text + "\"");
  return value;
}

std::vector<std::string> checked_tags(std::vector<std::string> tags, const std::string& where) {
  for (const auto& tag : tags)
    if (tag.empty())
      bad("bad_parameter", where + ": an empty tag name");
  return tags;
}

} // namespace gpumem::control
