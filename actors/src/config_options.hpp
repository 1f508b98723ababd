#pragma once
// The option table (config_options.cpp): one row per option, each knowing how to
// read its value into runtime_config and how to write it back. Internal.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors::detail {

/// A value refused: the key and what was wrong ("expected ..., got ..."). Thrown by
/// a row's `set` and by check_relations(); parse_command_line() adds where it came from.
struct refused {
  std::string key;
  std::string what;
};

struct option {
  std::string key;   // "gpumem.pressure.warning"
  std::string help;  // one line
  std::string form;  // the values it takes: "a fraction between 0 and 1"
  /// Reads a value (the file's, or a flag's by flag_value) into `config`.
  std::function<void(runtime_config& config, const toml::node& value)> set;
  /// The value in `config`, written as TOML.
  std::function<std::string(const runtime_config& config)> show;
  /// On the command line, a comma-separated list (--key=a,b).
  bool list = false;
};

/// A flag's text as a value (under "v"): a TOML number or boolean as such, anything
/// else a string; a list's comma-separated items each a string.
toml::table flag_value(std::string_view text, bool list);

/// Every option, in the order of the documented file.
const std::vector<option>& options();
const option* find_option(std::string_view key);
/// One line of comment for each group of options ("gpumem.host"), the file's order.
const std::vector<std::pair<std::string, std::string>>& groups();

/// `value` for an error message: "fast" quoted, 1.7, [1, 2], a table.
std::string render(const toml::node& value);

/// The checks between options (and the engine's own); `config` holds every value.
/// `given` says whether the file or the command line set a key.
void check_relations(const runtime_config& config,
                     const std::function<bool(const std::string& key)>& given);

} // namespace gpumem::actors::detail
