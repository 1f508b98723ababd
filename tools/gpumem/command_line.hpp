#pragma once
// A small parser for `gpumem <command> [--key value | --key=value]...` that refuses
// what it does not know, so a typo is an error rather than a silent default.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gpumem::tool {

class command_line {
public:
  /// Parses argv after the command name. Unknown keys and missing values throw
  /// std::invalid_argument with a message naming the key.
  command_line(const std::vector<std::string>& args, const std::vector<std::string>& known_keys);

  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string text(const std::string& key, const std::string& fallback) const;
  /// A byte size: plain bytes or with a K, M, G suffix (binary: 1M = 1 MiB).
  std::size_t bytes(const std::string& key, std::size_t fallback) const;
  long integer(const std::string& key, long fallback) const;

private:
  std::map<std::string, std::string> values_;
};

/// "64M" -> 64 MiB; throws std::invalid_argument naming `what` on anything else.
std::size_t parse_bytes(const std::string& text, const std::string& what);

} // namespace gpumem::tool
