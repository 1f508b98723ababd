#include "command_line.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace gpumem::tool {

command_line::command_line(const std::vector<std::string>& args,
                           const std::vector<std::string>& known_keys) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (arg.rfind("--", 0) != 0)
      throw std::invalid_argument("unexpected argument '" + arg + "'");
    auto eq = arg.find('=');
    auto key = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    if (std::find(known_keys.begin(), known_keys.end(), key) == known_keys.end())
      throw std::invalid_argument("unknown option '--" + key + "'");
    if (eq != std::string::npos) {
      values_[key] = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size())
        throw std::invalid_argument("option '--" + key + "' needs a value");
      values_[key] = args[++i];
    }
  }
}

std::string command_line::text(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

std::size_t command_line::bytes(const std::string& key, std::size_t fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : parse_bytes(it->second, "--" + key);
}

long command_line::integer(const std::string& key, long fallback) const {
  auto it = values_.find(key);
  if (it == values_.end())
    return fallback;
  std::size_t used = 0;
  long value = 0;
  try {
    value = std::stol(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size())
    throw std::invalid_argument("--" + key + " expects an integer, got '" + it->second + "'");
  return value;
}

std::size_t parse_bytes(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  unsigned long long value = 0;
  bool parsed = !text.empty() && std::isdigit(static_cast<unsigned char>(text[0]));
  if (parsed) {
    try {
      value = std::stoull(text, &used);
    } catch (const std::exception&) {
      parsed = false;
    }
  }
  std::string suffix = parsed ? text.substr(used) : "";
  int shift = -1;
  if (suffix.empty() || suffix == "B")
    shift = 0;
  else if (suffix == "K" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "GiB")
    shift = 30;
  if (!parsed || shift < 0 || value > (~0ull >> shift))
    throw std::invalid_argument(what + " expects a byte size such as 4096, 64M or 2G, got '"
                                + text + "'");
  return static_cast<std::size_t>(value << shift);
}

} // namespace gpumem::tool
