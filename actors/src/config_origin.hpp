#pragma once
// Where a configuration value came from: the command line, or a line of the config
// file, which is scanned as raw text for its `key = value` entries.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpumem::actors::detail {

/// `text` without leading and trailing white space.
std::string trim(std::string_view text);

/// The whole file, or nullopt where it cannot be opened.
std::optional<std::string> read_file(const std::string& path);

// One `key = value` of the file, for saying where a value came from and which key
// a syntax error is in. CAF's INI: `[section]` headers, `;` comments, lists may
// span lines.
struct ini_entry {
  std::string key;    // with its section: "gpumem.pressure.warning"
  std::string value;  // as written, comment removed
  int first_line = 0; // 1-based
  int last_line = 0;
};

/// Every `key = value` of an INI text, in file order.
std::vector<ini_entry> scan_ini(const std::string& text);

// Where a value came from: the command line, or a line of the config file.
class value_origin {
public:
  value_origin(const std::vector<std::string>& args, std::string path);

  bool on_command_line(const std::string& key) const;

  /// " (command line: --key=value)", " (path line 12)", or "" where neither set it.
  std::string where(const std::string& key) const;

private:
  const std::vector<std::string>& args_;
  std::string path_;
  std::vector<ini_entry> entries_;
};

} // namespace gpumem::actors::detail
