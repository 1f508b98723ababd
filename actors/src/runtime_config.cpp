#include "gpumem/actors/runtime_config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <regex>
#include <sstream>
#include <utility>

#include <caf/atom.hpp>
#include <caf/config_option_set.hpp>
#include <caf/config_value.hpp>
#include <caf/error.hpp>
#include <caf/pec.hpp>
#include <caf/sec.hpp>
#include <caf/settings.hpp>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::actors {

// -- names --------------------------------------------------------------------------

const char* to_string(backend_kind kind) noexcept {
  switch (kind) {
    case backend_kind::automatic: return "auto";
    case backend_kind::host: return "host";
    case backend_kind::cuda: return "cuda";
  }
  return "?";
}

const char* to_string(routing_policy policy) noexcept {
  switch (policy) {
    case routing_policy::least_loaded: return "least-loaded";
    case routing_policy::round_robin: return "round-robin";
    case routing_policy::tag_affinity: return "tag-affinity";
  }
  return "?";
}

const char* to_string(asleep_behaviour behaviour) noexcept {
  switch (behaviour) {
    case asleep_behaviour::queue: return "queue";
    case asleep_behaviour::fail: return "fail";
  }
  return "?";
}

// -- runtime_config -----------------------------------------------------------------

core::strategy runtime_config::strategy_for(std::string_view tag) const {
  auto i = tag_strategies.find(tag);
  return i == tag_strategies.end() ? default_strategy : i->second;
}

core::engine_config runtime_config::engine_config_for(int device) const {
  auto result = engine;
  result.device = device;
  return result;
}

cuda::host_backend_config runtime_config::host_backend_config() const {
  cuda::host_backend_config result;
  result.devices.clear();
  for (auto capacity : host.capacities) {
    cuda::host_device_config device;
    device.capacity = capacity;
    device.granularity = host.granularity;
    device.recommended_granularity = host.granularity;
    result.devices.push_back(device);
  }
  return result;
}

// -- byte sizes ---------------------------------------------------------------------

bool parse_byte_size(std::string_view text, std::size_t& bytes) noexcept {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data())
    return false;
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  while (!suffix.empty() && is_space(suffix.front()))
    suffix.remove_prefix(1);
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    switch (std::toupper(static_cast<unsigned char>(suffix.front()))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return false;
    }
    auto rest = suffix.substr(1);
    if (!rest.empty() && rest != "iB" && rest != "B")
      return false;
  }
  if (shift > 0 && number > (std::numeric_limits<std::size_t>::max() >> shift))
    return false;
  bytes = static_cast<std::size_t>(number) << shift;
  return true;
}

namespace {

// -- the options --------------------------------------------------------------------

// How an option's value is written. `declared` is the type CAF parses the command
// line with; the INI file's values are read raw from `content` whatever it declared.
enum class value_kind {
  integer,     // declared int64_t
  fraction,    // declared double; an integer is accepted too (1 is 1.0)
  boolean,     // declared std::string so that --key=false works (CAF 0.17 treats a
               // bool option as a flag that takes no value)
  text,        // declared std::string
  byte_size,   // declared std::string: "256M" on the command line
  text_list,   // declared std::vector<std::string>: --key=a,b
  size_list,   // declared std::vector<std::string>: --key=1G,512M
  entry_list,  // "tag=strategy" entries, declared std::string: CAF's list parser
               // rejects '=' inside unquoted elements, so the command line takes
               // --key=kv_cache=dedicated,weights=pooled and is split here
};

struct option_spec {
  const char* group;
  const char* name;
  value_kind kind;
  const char* form;     // the allowed forms, for help and error messages
  const char* fallback; // the default, as written in the INI file
  const char* help;
  std::int64_t min = 0;  // integers: the allowed range
  std::int64_t max = 0;
};

constexpr std::array options{
  option_spec{"gpumem", "backend", value_kind::text, "\"auto\", \"host\" or \"cuda\"", "\"auto\"",
              "device layer: auto (CUDA if a VMM-capable GPU exists, else host), host, cuda"},
  option_spec{"gpumem", "while-asleep", value_kind::text, "\"queue\" or \"fail\"", "\"queue\"",
              "an allocation for a sleeping tag waits for its wake (queue) or fails (fail)"},
  option_spec{"gpumem", "request-timeout-ms", value_kind::integer,
              "a whole number of milliseconds from 1 to 3600000", "5000",
              "timeout of every request to a remote actor", 1, 3'600'000},
  option_spec{"gpumem", "log-level", value_kind::text,
              "one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", \"critical\", \"off\"",
              "\"info\"", "spdlog level"},

  option_spec{"gpumem.host", "devices", value_kind::integer, "an integer from 1 to 64", "2",
              "number of emulated devices (host backend)", 1, 64},
  option_spec{"gpumem.host", "capacity", value_kind::byte_size,
              "a byte size like \"1G\", \"512M\" or 1073741824", "\"1G\"",
              "memory of each emulated device"},
  option_spec{"gpumem.host", "capacities", value_kind::size_list,
              "a list of byte sizes like [\"1G\", \"512M\"], one per device", "[]",
              "per-device memory; replaces devices and capacity when non-empty"},
  option_spec{"gpumem.host", "granularity", value_kind::byte_size,
              "a power of two byte size of at least 2M", "\"2M\"",
              "allocation granularity of the emulated devices"},

  option_spec{"gpumem.engine", "arena-size", value_kind::byte_size,
              "0 or a byte size, a multiple of the granularity", "0",
              "virtual address space per engine; 0: twice the device's memory"},
  option_spec{"gpumem.engine", "small-chunk", value_kind::byte_size,
              "a byte size, a multiple of the granularity", "\"2M\"", "small physical chunk"},
  option_spec{"gpumem.engine", "large-chunk", value_kind::byte_size,
              "a byte size, a multiple of small-chunk", "\"32M\"", "large physical chunk"},
  option_spec{"gpumem.engine", "small-segment", value_kind::byte_size,
              "a byte size, a multiple of small-chunk", "\"2M\"",
              "segment shared by small requests"},
  option_spec{"gpumem.engine", "small-threshold", value_kind::byte_size,
              "a byte size from 1 to small-segment", "\"1M\"",
              "requests up to this size share small segments"},
  option_spec{"gpumem.engine", "default-alignment", value_kind::byte_size,
              "a power of two from 256 to the granularity", "256",
              "alignment of requests that ask for none"},
  option_spec{"gpumem.engine", "cache-limit", value_kind::byte_size, "a byte size", "\"256M\"",
              "wholly free segments kept mapped for reuse"},
  option_spec{"gpumem.engine", "wake-margin", value_kind::byte_size, "a byte size", "0",
              "device memory a wake leaves free beyond what it maps"},
  option_spec{"gpumem.engine", "copy-piece", value_kind::byte_size, "a non-zero byte size",
              "\"8M\"", "sleep and wake copy in pieces of this size"},
  option_spec{"gpumem.engine", "copies-in-flight", value_kind::integer,
              "an integer from 1 to 1024", "4", "sleep and wake copies in flight", 1, 1024},
  option_spec{"gpumem.engine", "packed-tags", value_kind::text_list,
              "a list of tag names like [\"weights\"]", "[\"weights\"]",
              "tags whose large allocations grow their newest segment in place"},
  option_spec{"gpumem.engine", "default-strategy", value_kind::text,
              "\"pooled\", \"first_fit\" or \"dedicated\"", "\"pooled\"",
              "allocation strategy of requests that ask for none"},
  option_spec{"gpumem.engine", "tag-strategies", value_kind::entry_list,
              "a list of \"tag=strategy\" entries like [\"kv_cache=dedicated\"] "
              "(command line: tag=strategy,tag=strategy)",
              "[]", "per-tag overrides of default-strategy"},

  option_spec{"gpumem.balancer", "routing", value_kind::text,
              "\"least-loaded\", \"round-robin\" or \"tag-affinity\"", "\"least-loaded\"",
              "how the balancer picks a device"},

  option_spec{"gpumem.pressure", "period-ms", value_kind::integer,
              "a whole number of milliseconds from 1 to 3600000", "100",
              "how often the pressure monitor polls memory", 1, 3'600'000},
  option_spec{"gpumem.pressure", "warning", value_kind::fraction,
              "a fraction between 0 and 1 (exclusive), below critical", "0.80",
              "fraction of memory in use that raises a warning"},
  option_spec{"gpumem.pressure", "critical", value_kind::fraction,
              "a fraction above warning, at most 1", "0.92",
              "fraction of memory in use that is critical"},
  option_spec{"gpumem.pressure", "hysteresis", value_kind::fraction,
              "a fraction from 0 to below warning", "0.05",
              "a level is left only below its threshold minus this"},
  option_spec{"gpumem.pressure", "trim-at-warning", value_kind::boolean, "true or false", "true",
              "release cached segments at warning"},
  option_spec{"gpumem.pressure", "offload-at-critical", value_kind::boolean, "true or false",
              "true", "defragment, then offload offloadable tags at critical"},
  option_spec{"gpumem.pressure", "offloadable-tags", value_kind::text_list,
              "a list of tag names like [\"kv_cache\"]", "[\"kv_cache\"]",
              "tags the monitor may offload to host memory"},
  option_spec{"gpumem.pressure", "wake-on-normal", value_kind::boolean, "true or false", "true",
              "wake offloaded tags once pressure is back to normal"},
};

std::string full_key(const option_spec& spec) {
  return std::string(spec.group) + "." + spec.name;
}

const option_spec* find_spec(std::string_view key) {
  for (const auto& spec : options)
    if (full_key(spec) == key)
      return &spec;
  return nullptr;
}

bool known_group(std::string_view group) {
  return std::any_of(options.begin(), options.end(),
                     [&](const option_spec& spec) { return group == spec.group; });
}

std::string known_groups() {
  std::vector<std::string_view> groups;
  for (const auto& spec : options)
    if (std::find(groups.begin(), groups.end(), spec.group) == groups.end())
      groups.emplace_back(spec.group);
  std::string out;
  for (auto group : groups) {
    out += out.empty() ? "" : ", ";
    out += group;
  }
  return out;
}

std::string keys_of_group(std::string_view group) {
  std::string out;
  for (const auto& spec : options) {
    if (group != spec.group)
      continue;
    out += out.empty() ? "" : ", ";
    out += spec.name;
  }
  return out;
}

std::string trim(std::string_view text) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return std::string(text);
}

// 1.7, not CAF's 1.700000.
std::string render_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string render_value(const caf::config_value& value) {
  if (auto real = caf::get_if<caf::config_value::real>(&value.get_data()))
    return render_number(*real);
  return caf::to_string(value);
}

// -- the raw INI text ---------------------------------------------------------------

// One `key = value` of the file, for saying where a value came from and which key
// a syntax error is in. CAF's INI: `[section]` headers, `;` comments, lists may
// span lines.
struct ini_entry {
  std::string key;    // with its section: "gpumem.pressure.warning"
  std::string value;  // as written, comment removed
  int first_line = 0; // 1-based
  int last_line = 0;
};

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
      entries.back().value += " " + trim(rest);
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

// Where a value came from: the command line, or a line of the config file.
class value_origin {
public:
  value_origin(const std::vector<std::string>& args, std::string path)
    : args_(args), path_(std::move(path)) {
    if (!path_.empty())
      if (auto text = read_file(path_))
        entries_ = scan_ini(*text);
  }

  bool on_command_line(const std::string& key) const {
    auto flag = "--" + key;
    return std::any_of(args_.begin(), args_.end(), [&](const std::string& arg) {
      return arg == flag || arg.starts_with(flag + "=");
    });
  }

  std::string where(const std::string& key) const {
    auto flag = "--" + key;
    for (auto i = args_.rbegin(); i != args_.rend(); ++i)
      if (*i == flag || i->starts_with(flag + "="))
        return " (command line: " + *i + ")";
    for (auto i = entries_.rbegin(); i != entries_.rend(); ++i)
      if (i->key == key)
        return " (" + path_ + " line " + std::to_string(i->first_line) + ")";
    return {};
  }

private:
  const std::vector<std::string>& args_;
  std::string path_;
  std::vector<ini_entry> entries_;
};

// -- reading the values -------------------------------------------------------------

struct refused {
  config_error error;
};

class reader {
public:
  reader(const caf::settings& content, const value_origin& origin)
    : content_(content), origin_(origin) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw refused{config_error{key, key + ": " + what + origin_.where(key)}};
  }

  [[noreturn]] void expected(const std::string& key, const caf::config_value& got) const {
    const auto* spec = find_spec(key);
    fail(key, std::string("expected ") + (spec ? spec->form : "another value") + ", got "
                  + render_value(got));
  }

  /// The raw value under a dotted key, or null where it is unset.
  const caf::config_value* find(std::string_view key) const { return lookup(content_, key); }

  static const caf::config_value* lookup(const caf::settings& settings, std::string_view key) {
    const caf::settings* dict = &settings;
    for (;;) {
      auto dot = key.find('.');
      auto part = key.substr(0, dot);
      auto i = dict->find(part);
      if (i == dict->end())
        return nullptr;
      if (dot == std::string_view::npos)
        return &i->second;
      dict = caf::get_if<caf::config_value::dictionary>(&i->second.get_data());
      if (dict == nullptr)
        return nullptr;
      key.remove_prefix(dot + 1);
    }
  }

  bool has(const std::string& key) const { return find(key) != nullptr; }

  // -- one value of each kind, or the fallback where unset --

  std::int64_t integer(const std::string& key, std::int64_t fallback) const {
    auto value = find(key);
    return value ? integer_of(key, *value) : fallback;
  }
  double fraction(const std::string& key, double fallback) const {
    auto value = find(key);
    return value ? fraction_of(key, *value) : fallback;
  }
  bool boolean(const std::string& key, bool fallback) const {
    auto value = find(key);
    return value ? boolean_of(key, *value) : fallback;
  }
  std::string text(const std::string& key, std::string fallback) const {
    auto value = find(key);
    return value ? text_of(key, *value) : fallback;
  }
  std::size_t size(const std::string& key, std::size_t fallback) const {
    auto value = find(key);
    return value ? size_of(key, *value) : fallback;
  }
  std::vector<std::string> text_list(const std::string& key,
                                     std::vector<std::string> fallback) const {
    auto value = find(key);
    return value ? text_list_of(key, *value) : fallback;
  }
  std::vector<std::size_t> size_list(const std::string& key,
                                     std::vector<std::size_t> fallback) const {
    auto value = find(key);
    return value ? size_list_of(key, *value) : fallback;
  }
  std::vector<std::string> entry_list(const std::string& key) const {
    auto value = find(key);
    return value ? entry_list_of(key, *value) : std::vector<std::string>{};
  }

  /// Checks one value against its option's kind (not against other options).
  void check(const option_spec& spec, const caf::config_value& value) const {
    auto key = full_key(spec);
    switch (spec.kind) {
      case value_kind::integer: integer_of(key, value); break;
      case value_kind::fraction: fraction_of(key, value); break;
      case value_kind::boolean: boolean_of(key, value); break;
      case value_kind::text: text_of(key, value); break;
      case value_kind::byte_size: size_of(key, value); break;
      case value_kind::text_list: text_list_of(key, value); break;
      case value_kind::size_list: size_list_of(key, value); break;
      case value_kind::entry_list: entry_list_of(key, value); break;
    }
  }

  /// Refuses keys under gpumem that no option declares: CAF keeps them and nothing
  /// would read them, so a misspelt key would silently change nothing. Checks the
  /// kind of every known one.
  void check_all(const caf::settings& settings) const {
    auto root = lookup(settings, "gpumem");
    if (root == nullptr)
      return;
    auto dict = caf::get_if<caf::config_value::dictionary>(&root->get_data());
    if (dict == nullptr)
      fail("gpumem", "expected a group of options ([gpumem] section), got " + render_value(*root));
    walk("gpumem", *dict);
  }

private:
  std::int64_t integer_of(const std::string& key, const caf::config_value& value) const {
    const auto* spec = find_spec(key);
    auto number = caf::get_if<caf::config_value::integer>(&value.get_data());
    if (number == nullptr || (spec && (*number < spec->min || *number > spec->max)))
      expected(key, value);
    return *number;
  }

  double fraction_of(const std::string& key, const caf::config_value& value) const {
    double result = 0;
    if (auto real = caf::get_if<caf::config_value::real>(&value.get_data()))
      result = *real;
    else if (auto number = caf::get_if<caf::config_value::integer>(&value.get_data()))
      result = static_cast<double>(*number);
    else
      expected(key, value);
    if (!std::isfinite(result))
      expected(key, value);
    return result;
  }

  bool boolean_of(const std::string& key, const caf::config_value& value) const {
    if (auto flag = caf::get_if<caf::config_value::boolean>(&value.get_data()))
      return *flag;
    if (auto text = caf::get_if<caf::config_value::string>(&value.get_data())) {
      if (*text == "true")
        return true;
      if (*text == "false")
        return false;
    }
    expected(key, value);
  }

  std::string text_of(const std::string& key, const caf::config_value& value) const {
    if (auto string = caf::get_if<caf::config_value::string>(&value.get_data()))
      return *string;
    if (auto atom = caf::get_if<caf::atom_value>(&value.get_data()))
      return caf::to_string(*atom);
    expected(key, value);
  }

  std::size_t size_of(const std::string& key, const caf::config_value& value) const {
    if (auto number = caf::get_if<caf::config_value::integer>(&value.get_data())) {
      if (*number < 0)
        expected(key, value);
      return static_cast<std::size_t>(*number);
    }
    std::size_t bytes = 0;
    auto string = caf::get_if<caf::config_value::string>(&value.get_data());
    if (string == nullptr || !parse_byte_size(*string, bytes))
      expected(key, value);
    return bytes;
  }

  std::vector<std::string> text_list_of(const std::string& key,
                                        const caf::config_value& value) const {
    auto list = caf::get_if<caf::config_value::list>(&value.get_data());
    if (list == nullptr)
      expected(key, value);
    std::vector<std::string> result;
    for (const auto& element : *list) {
      auto string = caf::get_if<caf::config_value::string>(&element.get_data());
      if (string == nullptr)
        expected(key, value);
      result.push_back(*string);
    }
    return result;
  }

  std::vector<std::size_t> size_list_of(const std::string& key,
                                        const caf::config_value& value) const {
    auto list = caf::get_if<caf::config_value::list>(&value.get_data());
    if (list == nullptr)
      expected(key, value);
    std::vector<std::size_t> result;
    for (const auto& element : *list)
      result.push_back(size_of(key, element));
    return result;
  }

  /// A list of strings, or one string of comma-separated entries (the command line).
  std::vector<std::string> entry_list_of(const std::string& key,
                                         const caf::config_value& value) const {
    if (auto string = caf::get_if<caf::config_value::string>(&value.get_data())) {
      std::vector<std::string> result;
      std::string_view rest = *string;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        result.push_back(trim(rest.substr(0, comma)));
        if (comma == std::string_view::npos)
          break;
        rest.remove_prefix(comma + 1);
        if (rest.empty())
          result.emplace_back();
      }
      return result;
    }
    return text_list_of(key, value);
  }

  void walk(const std::string& group, const caf::config_value::dictionary& dict) const {
    for (const auto& [name, value] : dict) {
      auto key = group + "." + name;
      if (const auto* spec = find_spec(key)) {
        check(*spec, value);
        continue;
      }
      auto sub = caf::get_if<caf::config_value::dictionary>(&value.get_data());
      if (sub != nullptr && known_group(key)) {
        walk(key, *sub);
        continue;
      }
      if (sub != nullptr) {  // an unknown group: name its first key
        auto leaf = key;
        while (sub != nullptr && !sub->empty()) {
          leaf += "." + sub->begin()->first;
          sub = caf::get_if<caf::config_value::dictionary>(&sub->begin()->second.get_data());
        }
        fail(leaf, "unknown option: " + key + " is no group of options; the groups are: "
                     + known_groups());
      }
      fail(key, "unknown option; the options of " + group + " are: " + keys_of_group(group));
    }
  }

  const caf::settings& content_;
  const value_origin& origin_;
};

template <class Enum, std::size_t N>
Enum choose(const reader& in, const std::string& key, const std::string& name,
            const std::array<std::pair<const char*, Enum>, N>& choices) {
  for (const auto& [text, value] : choices)
    if (name == text)
      return value;
  in.fail(key, std::string("expected ") + find_spec(key)->form + ", got \"" + name + "\"");
}

bool power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

runtime_config read_config(const reader& in) {
  runtime_config config;
  const runtime_config defaults;

  // [gpumem]
  config.backend = choose(in, "gpumem.backend", in.text("gpumem.backend", "auto"),
                          std::array{std::pair{"auto", backend_kind::automatic},
                                     std::pair{"host", backend_kind::host},
                                     std::pair{"cuda", backend_kind::cuda}});
  config.while_asleep = choose(in, "gpumem.while-asleep", in.text("gpumem.while-asleep", "queue"),
                               std::array{std::pair{"queue", asleep_behaviour::queue},
                                          std::pair{"fail", asleep_behaviour::fail}});
  config.request_timeout = std::chrono::milliseconds{in.integer(
    "gpumem.request-timeout-ms", defaults.request_timeout.count())};
  config.log_level = choose(in, "gpumem.log-level", in.text("gpumem.log-level", "info"),
                            std::array{std::pair{"trace", spdlog::level::trace},
                                       std::pair{"debug", spdlog::level::debug},
                                       std::pair{"info", spdlog::level::info},
                                       std::pair{"warn", spdlog::level::warn},
                                       std::pair{"warning", spdlog::level::warn},
                                       std::pair{"err", spdlog::level::err},
                                       std::pair{"error", spdlog::level::err},
                                       std::pair{"critical", spdlog::level::critical},
                                       std::pair{"off", spdlog::level::off}});

  // [gpumem.host]
  auto& host = config.host;
  host.granularity = in.size("gpumem.host.granularity", defaults.host.granularity);
  if (!power_of_two(host.granularity) || host.granularity < 2 * MiB)
    in.fail("gpumem.host.granularity", "expected a power of two of at least 2M, got "
                                          + format_bytes(host.granularity));
  auto devices = in.integer("gpumem.host.devices", 2);
  auto capacity = in.size("gpumem.host.capacity", 1 * GiB);
  auto capacities = in.size_list("gpumem.host.capacities", {});
  if (!capacities.empty()) {
    if (in.has("gpumem.host.capacity"))
      in.fail("gpumem.host.capacities",
              "give either gpumem.host.capacity (one for all) or gpumem.host.capacities "
              "(one per device), not both");
    if (in.has("gpumem.host.devices") && capacities.size() != static_cast<std::size_t>(devices))
      in.fail("gpumem.host.capacities",
              "lists " + std::to_string(capacities.size()) + " capacities but gpumem.host.devices is "
                + std::to_string(devices));
    if (capacities.size() > 64)
      in.fail("gpumem.host.capacities",
              "lists " + std::to_string(capacities.size()) + " devices; at most 64");
    host.capacities = capacities;
  } else {
    host.capacities.assign(static_cast<std::size_t>(devices), capacity);
  }
  for (std::size_t i = 0; i < host.capacities.size(); ++i) {
    auto c = host.capacities[i];
    if (c == 0 || c % host.granularity != 0) {
      auto key = capacities.empty() ? "gpumem.host.capacity" : "gpumem.host.capacities";
      in.fail(key, "device " + std::to_string(i) + ": expected a non-zero multiple of the granularity "
                     + format_bytes(host.granularity) + ", got " + std::to_string(c) + " bytes");
    }
  }

  // [gpumem.engine]: checked against the granularity every backend it may run on has.
  std::size_t granularity = 2 * MiB;  // CUDA's minimum
  std::string granularity_name = "CUDA's minimum granularity";
  if (config.backend != backend_kind::cuda && host.granularity > granularity) {
    granularity = host.granularity;
    granularity_name = "the granularity (gpumem.host.granularity)";
  } else if (config.backend == backend_kind::host) {
    granularity_name = "the granularity (gpumem.host.granularity)";
  }
  auto granularity_text = granularity_name + " " + format_bytes(granularity);
  auto& engine = config.engine;
  const auto& de = defaults.engine;
  engine.arena_size = in.size("gpumem.engine.arena-size", de.arena_size);
  engine.small_chunk = in.size("gpumem.engine.small-chunk", de.small_chunk);
  engine.large_chunk = in.size("gpumem.engine.large-chunk", de.large_chunk);
  engine.small_segment = in.size("gpumem.engine.small-segment", de.small_segment);
  engine.small_threshold = in.size("gpumem.engine.small-threshold", de.small_threshold);
  engine.default_alignment = in.size("gpumem.engine.default-alignment", de.default_alignment);
  engine.cache_limit = in.size("gpumem.engine.cache-limit", de.cache_limit);
  engine.wake_margin = in.size("gpumem.engine.wake-margin", de.wake_margin);
  engine.copy_piece = in.size("gpumem.engine.copy-piece", de.copy_piece);
  engine.copies_in_flight =
    static_cast<int>(in.integer("gpumem.engine.copies-in-flight", de.copies_in_flight));
  engine.packed_tags = in.text_list("gpumem.engine.packed-tags", de.packed_tags);

  if (engine.small_chunk == 0 || engine.small_chunk % granularity != 0)
    in.fail("gpumem.engine.small-chunk", "expected a non-zero multiple of " + granularity_text
                                            + ", got " + format_bytes(engine.small_chunk));
  if (engine.large_chunk < engine.small_chunk || engine.large_chunk % engine.small_chunk != 0)
    in.fail("gpumem.engine.large-chunk",
            "expected a multiple of gpumem.engine.small-chunk " + format_bytes(engine.small_chunk)
              + ", got " + format_bytes(engine.large_chunk));
  if (engine.small_segment < engine.small_chunk || engine.small_segment % engine.small_chunk != 0)
    in.fail("gpumem.engine.small-segment",
            "expected a multiple of gpumem.engine.small-chunk " + format_bytes(engine.small_chunk)
              + ", got " + format_bytes(engine.small_segment));
  if (engine.small_threshold == 0 || engine.small_threshold > engine.small_segment)
    in.fail("gpumem.engine.small-threshold",
            "expected a size from 1 byte to gpumem.engine.small-segment "
              + format_bytes(engine.small_segment) + ", got " + format_bytes(engine.small_threshold));
  if (!power_of_two(engine.default_alignment) || engine.default_alignment < 256
      || engine.default_alignment > granularity)
    in.fail("gpumem.engine.default-alignment",
            "expected a power of two from 256 to " + granularity_text + ", got "
              + std::to_string(engine.default_alignment));
  if (engine.arena_size != 0
      && (engine.arena_size % granularity != 0 || engine.arena_size < engine.small_segment))
    in.fail("gpumem.engine.arena-size",
            "expected 0 or a multiple of " + granularity_text
              + " holding at least one small segment, got " + format_bytes(engine.arena_size));
  if (engine.copy_piece == 0)
    in.fail("gpumem.engine.copy-piece", "expected a non-zero byte size, got 0");
  for (const auto& tag : engine.packed_tags)
    if (tag.empty())
      in.fail("gpumem.engine.packed-tags", "expected non-empty tag names, got an empty one");

  config.default_strategy = choose(in, "gpumem.engine.default-strategy",
                                   in.text("gpumem.engine.default-strategy", "pooled"),
                                   std::array{std::pair{"pooled", core::strategy::pooled},
                                              std::pair{"first_fit", core::strategy::first_fit},
                                              std::pair{"dedicated", core::strategy::dedicated}});
  auto entries = in.entry_list("gpumem.engine.tag-strategies");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& entry = entries[i];
    auto bad = [&](const std::string& why) {
      in.fail("gpumem.engine.tag-strategies",
              "entry " + std::to_string(i + 1) + " \"" + entry + "\": " + why
                + "; expected \"tag=strategy\" with strategy pooled, first_fit or dedicated");
    };
    auto eq = entry.find('=');
    if (eq == std::string::npos)
      bad("no '='");
    auto tag = trim(std::string_view(entry).substr(0, eq));
    auto name = trim(std::string_view(entry).substr(eq + 1));
    if (tag.empty())
      bad("empty tag name");
    auto how = core::parse_strategy(name);
    if (!how)
      bad("unknown strategy \"" + name + "\"");
    if (!config.tag_strategies.emplace(tag, *how).second)
      bad("tag \"" + tag + "\" is given a strategy twice");
  }

  // The engine's own check, as a net under the ones above.
  cuda::device_properties props;
  props.total_memory = host.capacities.front();
  props.vmm_supported = true;
  props.granularity_minimum = granularity;
  props.granularity_recommended = granularity;
  if (auto checked = config.engine_config_for(0).validate(props); !checked)
    in.fail("gpumem.engine", checked.error().message());

  // [gpumem.balancer]
  config.routing = choose(in, "gpumem.balancer.routing",
                          in.text("gpumem.balancer.routing", "least-loaded"),
                          std::array{std::pair{"least-loaded", routing_policy::least_loaded},
                                     std::pair{"round-robin", routing_policy::round_robin},
                                     std::pair{"tag-affinity", routing_policy::tag_affinity}});

  // [gpumem.pressure]
  auto& p = config.pressure;
  const auto& dp = defaults.pressure;
  p.period = std::chrono::milliseconds{
    in.integer("gpumem.pressure.period-ms", dp.period.count())};
  p.warning = in.fraction("gpumem.pressure.warning", dp.warning);
  p.critical = in.fraction("gpumem.pressure.critical", dp.critical);
  p.hysteresis = in.fraction("gpumem.pressure.hysteresis", dp.hysteresis);
  auto figure = [](double v) { return render_number(v); };
  if (!(p.warning > 0 && p.warning < 1))
    in.fail("gpumem.pressure.warning",
            "expected a fraction between 0 and 1, got " + figure(p.warning));
  if (!(p.critical > 0 && p.critical <= 1))
    in.fail("gpumem.pressure.critical",
            "expected a fraction above 0, at most 1, got " + figure(p.critical));
  if (!(p.warning < p.critical))
    in.fail("gpumem.pressure.critical", "expected a fraction above gpumem.pressure.warning "
                                          + figure(p.warning) + ", got " + figure(p.critical));
  if (!(p.hysteresis >= 0 && p.hysteresis < p.warning))
    in.fail("gpumem.pressure.hysteresis",
            "expected a fraction from 0 to below gpumem.pressure.warning " + figure(p.warning)
              + ", got " + figure(p.hysteresis));
  p.trim_at_warning = in.boolean("gpumem.pressure.trim-at-warning", dp.trim_at_warning);
  p.offload_at_critical = in.boolean("gpumem.pressure.offload-at-critical", dp.offload_at_critical);
  p.offloadable_tags = in.text_list("gpumem.pressure.offloadable-tags", dp.offloadable_tags);
  for (const auto& tag : p.offloadable_tags)
    if (tag.empty())
      in.fail("gpumem.pressure.offloadable-tags", "expected non-empty tag names, got an empty one");
  p.wake_on_normal = in.boolean("gpumem.pressure.wake-on-normal", dp.wake_on_normal);
  return config;
}

// Puts every gpumem value of `file` into `effective`, except those the command line set.
void overlay(caf::settings& effective, const caf::settings& file, const value_origin& origin) {
  auto root = reader::lookup(file, "gpumem");
  if (root == nullptr)
    return;
  auto put = [&](const std::string& key, const caf::config_value& value) {
    caf::settings* dict = &effective;
    std::string_view rest = key;
    for (auto dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.')) {
      auto& slot = (*dict)[std::string(rest.substr(0, dot))];
      if (caf::get_if<caf::config_value::dictionary>(&slot.get_data()) == nullptr)
        slot = caf::config_value::dictionary{};
      dict = caf::get_if<caf::config_value::dictionary>(&slot.get_data());
      rest.remove_prefix(dot + 1);
    }
    (*dict)[std::string(rest)] = value;
  };
  std::function<void(const std::string&, const caf::config_value&)> visit;
  visit = [&](const std::string& key, const caf::config_value& value) {
    auto sub = caf::get_if<caf::config_value::dictionary>(&value.get_data());
    if (sub != nullptr && find_spec(key) == nullptr) {
      for (const auto& [name, child] : *sub)
        visit(key + "." + name, child);
    } else if (!origin.on_command_line(key)) {
      put(key, value);
    }
  };
  visit("gpumem", *root);
}

// -- CAF's parse errors -------------------------------------------------------------

std::string extract(const std::string& text, const char* pattern) {
  std::smatch match;
  if (std::regex_search(text, match, std::regex(pattern)))
    return match[1].str();
  return {};
}

config_error command_line_error(caf::pec code, const std::string& argument,
                                const std::string& rendered) {
  auto body = argument.starts_with("--") ? argument.substr(2) : argument;
  auto eq = body.find('=');
  auto key = body.substr(0, eq);
  auto value = eq == std::string::npos ? std::string{} : body.substr(eq + 1);
  auto where = " (command line: " + argument + ")";
  const auto* spec = find_spec(key);
  if (code == caf::pec::not_an_option)
    return {key, key + ": unknown option" + where};
  if (spec == nullptr)
    return {key, key + ": cannot parse the value" + where + ": " + rendered};
  if (code == caf::pec::missing_argument)
    return {key, key + ": expected a value, " + spec->form + where};
  return {key, key + ": expected " + spec->form + ", got \"" + value + "\"" + where};
}

config_error ini_error(const std::string& path, int line, int column, caf::pec code) {
  // CAF reports a line that ends too early at the start of the next one.
  auto place = path + " line " + std::to_string(line) + " column " + std::to_string(column);
  if (code == caf::pec::unexpected_newline && column <= 1 && line > 1) {
    --line;
    place = path + " line " + std::to_string(line) + ", at its end";
  }
  auto text = read_file(path);
  if (text) {
    for (const auto& entry : scan_ini(*text)) {
      if (line < entry.first_line || line > entry.last_line)
        continue;
      std::string message = entry.key + ": cannot parse `" + entry.value + "` (" + place + ", "
                            + caf::to_string(code) + "). CAF's INI syntax: strings in double "
                            "quotes (\"text\"), lists in brackets ([\"a\", \"b\"]), booleans "
                            "true or false";
      if (const auto* spec = find_spec(entry.key))
        message += "; expected " + std::string(spec->form);
      return {entry.key, message};
    }
  }
  return {"config-file", "config-file: syntax error in " + place + " (" + caf::to_string(code) + ")"};
}

} // namespace

// -- gpumem_config ------------------------------------------------------------------

gpumem_config::gpumem_config() {
  for (const auto& spec : options) {
    std::string help = std::string(spec.help) + "; " + spec.form + "; default " + spec.fallback;
    opt_group group{custom_options_, spec.group};
    switch (spec.kind) {
      case value_kind::integer:
        group.add<std::int64_t>(spec.name, help);
        break;
      case value_kind::fraction:
        group.add<double>(spec.name, help);
        break;
      case value_kind::boolean:
      case value_kind::text:
      case value_kind::byte_size:
      case value_kind::entry_list:
        group.add<std::string>(spec.name, help);
        break;
      case value_kind::text_list:
      case value_kind::size_list:
        group.add<std::vector<std::string>>(spec.name, help);
        break;
    }
  }
}

config_result<gpumem_config::parse_outcome>
gpumem_config::parse_command_line(int argc, char** argv, const char* default_file) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  return parse_command_line(std::move(args), default_file);
}

config_result<gpumem_config::parse_outcome>
gpumem_config::parse_command_line(std::vector<std::string> args, const char* default_file) {
  args_ = args;
  auto err = parse(std::move(args), default_file);
  if (err) {
    auto rendered = render(err);
    if (err.category() == caf::atom("system")
        && static_cast<caf::sec>(err.code()) == caf::sec::cannot_open_file)
      return config_error{"config-file", "config-file: cannot open " + config_file_path};
    if (err.category() == caf::atom("parser")) {
      auto code = static_cast<caf::pec>(err.code());
      auto argument = extract(rendered, R"re("argument" = "((?:[^"\\]|\\.)*)")re");
      if (!argument.empty())
        return command_line_error(code, std::regex_replace(argument, std::regex(R"(\\(.))"), "$1"),
                                  rendered);
      auto line = extract(rendered, R"("line" = (\d+))");
      auto column = extract(rendered, R"("column" = (\d+))");
      if (!line.empty())
        return ini_error(config_file_path, std::stoi(line), column.empty() ? 0 : std::stoi(column),
                         code);
    }
    return config_error{"", "cannot read the configuration: " + rendered};
  }
  if (cli_helptext_printed)
    return parse_outcome::exit;
  if (!remainder.empty())
    return config_error{"", "unexpected argument \"" + remainder.front()
                              + "\": options take the form --gpumem.group.key=value (CAF stops "
                                "reading options at the first argument that is not one)"};
  return parse_outcome::run;
}

config_result<runtime_config> gpumem_config::to_runtime_config() const {
  // CAF 0.17 keeps in `content` a file's value of the wrong type for some declared
  // types (an int64 option set to "fast") and drops it for others (a string option
  // set to 3, so `trim-at-warning = false` or `capacity = 1073741824` would vanish):
  // the file is therefore read again, raw, and each of its values checked and used
  // unless the command line set that key.
  static const std::vector<std::string> no_args;
  value_origin origin(args_, config_file_path);
  try {
    caf::settings effective = content;
    if (!config_file_path.empty() && std::ifstream(config_file_path).good()) {
      auto file = parse_config_file(config_file_path.c_str());
      if (!file)
        return config_error{"config-file", "config-file: cannot parse " + config_file_path + ": "
                                             + render(file.error())};
      value_origin file_origin(no_args, config_file_path);
      reader(*file, file_origin).check_all(*file);
      overlay(effective, *file, origin);
    }
    reader in(effective, origin);
    in.check_all(effective);
    return read_config(in);
  } catch (refused& r) {
    return std::move(r.error);
  }
}

} // namespace gpumem::actors
