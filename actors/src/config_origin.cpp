// The config file as raw text (its `key = value` entries and their lines) and
// value_origin, which says where a value came from.

#include "config_origin.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <utility>

namespace gpumem::actors::detail {

std::string trim(std::string_view text) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return std::string(text);
}

namespace {

std::string strip_comment(std::string_view line, int& depth) {
  bool quoted = false;
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '\\' && i + 1 < line.size()) {
        out += c;
        c = line[++i];
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ';') {
      break;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    }
    out += c;
  }
  return out;
}

} // namespace

std::vector<ini_entry> scan_ini(const std::string& text) {
  std::vector<ini_entry> entries;
  std::istringstream in(text);
  std::string line;
  std::string section;
  int number = 0;
  int depth = 0;  // open brackets of a value that spans lines
  while (std::getline(in, line)) {
    ++number;
    if (depth > 0 && !entries.empty()) {  // a continuation of a list
      auto rest = strip_comment(line, depth);
      // Appended in two steps: GCC 12 takes `" " + trim(rest)` for an overlapping
      // memcpy here (a false -Wrestrict).
      entries.back().value += ' ';
      entries.back().value += trim(rest);
      entries.back().last_line = number;
      continue;
    }
    depth = 0;
    int header_depth = 0;
    auto content = trim(strip_comment(line, header_depth));
    if (content.empty())
      continue;
    if (content.front() == '[') {
      auto close = content.find(']');
      section = trim(content.substr(1, close == std::string::npos ? std::string::npos : close - 1));
      continue;
    }
    auto eq = content.find('=');
    if (eq == std::string::npos)
      continue;
    ini_entry entry;
    auto name = trim(content.substr(0, eq));
    entry.key = section.empty() || section == "global" ? name : section + "." + name;
    entry.first_line = entry.last_line = number;
    int value_depth = 0;
    entry.value = trim(strip_comment(content.substr(eq + 1), value_depth));
    depth = std::max(value_depth, 0);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// -- value_origin -------------------------------------------------------------------

value_origin::value_origin(const std::vector<std::string>& args, std::string path)
  : args_(args), path_(std::move(path)) {
  if (!path_.empty())
    if (auto text = read_file(path_))
      entries_ = scan_ini(*text);
}

bool value_origin::on_command_line(const std::string& key) const {
  auto flag = "--" + key;
  return std::any_of(args_.begin(), args_.end(), [&](const std::string& arg) {
    return arg == flag || arg.starts_with(flag + "=");
  });
}

std::string value_origin::where(const std::string& key) const {
  auto flag = "--" + key;
  for (auto i = args_.rbegin(); i != args_.rend(); ++i)
    if (*i == flag || i->starts_with(flag + "="))
      return " (command line: " + *i + ")";
  for (auto i = entries_.rbegin(); i != entries_.rend(); ++i)
    if (i->key == key)
      return " (" + path_ + " line " + std::to_string(i->first_line) + ")";
  return {};
}

} // namespace gpumem::actors::detail
