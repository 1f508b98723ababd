#pragma once
// Reading gpumem's raw option values: the reader that checks each value's kind and
// refuses with the key, and the section readers that build a runtime_config.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include "config_options.hpp"
#include "config_origin.hpp"
#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors::detail {

// 1.7, not CAF's 1.700000.
std::string render_number(double v);
std::string render_value(const caf::config_value& value);

// -- reading the values -------------------------------------------------------------

/// Thrown by reader::fail() and caught by to_runtime_config(): the first refusal ends
/// the reading.
struct refused {
  config_error error;
};

class reader {
public:
  reader(const caf::settings& content, const value_origin& origin)
    : content_(content), origin_(origin) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  [[noreturn]] void expected(const std::string& key, const caf::config_value& got) const;

  /// The raw value under a dotted key, or null where it is unset.
  const caf::config_value* find(std::string_view key) const { return lookup(content_, key); }

  static const caf::config_value* lookup(const caf::settings& settings, std::string_view key);

  bool has(const std::string& key) const { return find(key) != nullptr; }

  // -- one value of each kind, or the fallback where unset --

  std::int64_t integer(const std::string& key, std::int64_t fallback) const;
  double fraction(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string text(const std::string& key, std::string fallback) const;
  std::size_t size(const std::string& key, std::size_t fallback) const;
  std::vector<std::string> text_list(const std::string& key,
                                     std::vector<std::string> fallback) const;
  std::vector<std::size_t> size_list(const std::string& key,
                                     std::vector<std::size_t> fallback) const;
  std::vector<std::string> entry_list(const std::string& key) const;

  /// Checks one value against its option's kind (not against other options).
  void check(const option_spec& spec, const caf::config_value& value) const;

  /// Refuses keys under gpumem that no option declares: CAF keeps them and nothing
  /// would read them, so a misspelt key would silently change nothing. Checks the
  /// kind of every known one.
  void check_all(const caf::settings& settings) const;

private:
  std::int64_t integer_of(const std::string& key, const caf::config_value& value) const;
  double fraction_of(const std::string& key, const caf::config_value& value) const;
  bool boolean_of(const std::string& key, const caf::config_value& value) const;
  std::string text_of(const std::string& key, const caf::config_value& value) const;
  std::size_t size_of(const std::string& key, const caf::config_value& value) const;
  std::vector<std::string> text_list_of(const std::string& key,
                                        const caf::config_value& value) const;
  std::vector<std::size_t> size_list_of(const std::string& key,
                                        const caf::config_value& value) const;
  /// A list of strings, or one string of comma-separated entries (the command line).
  std::vector<std::string> entry_list_of(const std::string& key,
                                         const caf::config_value& value) const;

  void walk(const std::string& group, const caf::config_value::dictionary& dict) const;

  const caf::settings& content_;
  const value_origin& origin_;
};

/// The enum value that `name` names among `choices`; refuses with the option's form.
template <class Enum, std::size_t N>
Enum choose(const reader& in, const std::string& key, const std::string& name,
            const std::array<std::pair<const char*, Enum>, N>& choices) {
  for (const auto& [text, value] : choices)
    if (name == text)
      return value;
  in.fail(key, std::string("expected ") + find_spec(key)->form + ", got \"" + name + "\"");
}

inline bool power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

// -- the sections, in the order to_runtime_config() reads them ---------------------
// [gpumem] and [gpumem.balancer] are short and read in config_read.cpp.

/// [gpumem.host]: the emulated devices.
void read_host_section(const reader& in, runtime_config& config);
/// [gpumem.engine]: checked against the granularity of every backend it may run on;
/// needs the backend and [gpumem.host] read first.
void read_engine_section(const reader& in, runtime_config& config);
/// [gpumem.pressure]
void read_pressure_section(const reader& in, runtime_config& config);

} // namespace gpumem::actors::detail
