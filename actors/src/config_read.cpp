// gpumem_config::parse_command_line(): the file, read once with toml++ (which says
// where each value stands), then the command line over it, every value through its
// row of the option table; and the documented file written from the table.

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include <caf/error.hpp>

#include "config_options.hpp"

namespace gpumem::actors {

using namespace detail;

namespace {

constexpr const char* syntax_hint = "TOML: strings in double quotes (\"text\"), lists in brackets "
                                    "([\"a\", \"b\"]), booleans true or false";

// "group.name", or "name" at the top. (Appends: GCC 12 warns falsely of the same with
// operator+, -Wrestrict.)
std::string dotted(const std::string& group, std::string_view name) {
  std::string key = group;
  return (key.empty() ? key : key.append(".")).append(name);
}

// Every key the options are grouped under: "gpumem", "gpumem.host", ...
bool is_group(std::string_view key) {
  for (const auto& o : options())
    if (o.key.size() > key.size() && o.key.starts_with(key) && o.key[key.size()] == '.')
      return true;
  return false;
}

std::string names_under(std::string_view group) {
  std::string out;
  for (const auto& [name, _] : groups())
    if (group.empty())
      out += (out.empty() ? "" : ", ") + name;
  for (const auto& o : options())
    if (!group.empty() && o.key.starts_with(group) && o.key.rfind('.') == group.size())
      out += (out.empty() ? "" : ", ") + o.key.substr(group.size() + 1);
  return out;
}

// The file's values: each known key read by its row, anything else refused.
class file_reader {
public:
  file_reader(runtime_config& config, std::map<std::string, std::string>& where, std::string path)
    : config_(config), where_(where), path_(std::move(path)) {}

  void walk(const toml::table& table, const std::string& group) {
    for (const auto& [name, value] : table) {
      auto key = dotted(group, name.str());
      where_[key] = " (" + path_ + " line " + std::to_string(value.source().begin.line) + ")";
      if (const auto* o = find_option(key)) {
        o->set(config_, value);
      } else if (value.is_table() && is_group(key)) {
        walk(*value.as_table(), key);
      } else if (const auto* sub = value.as_table(); sub && !sub->empty()) {  // name its first key
        auto leaf = key;
        for (; sub && !sub->empty(); sub = sub->cbegin()->second.as_table())
          leaf = dotted(leaf, sub->cbegin()->first.str());
        where_[leaf] = where_[key];
        throw refused{leaf, "unknown option: " + key + " is no group of options; the groups are: "
                              + names_under("")};
      } else {
        throw refused{key, "unknown option; the options of " + (group.empty() ? "the file" : group)
                             + " are: " + names_under(group)};
      }
    }
  }

private:
  runtime_config& config_;
  std::map<std::string, std::string>& where_;
  std::string path_;
};

// The dotted key of the node that starts on `line`, or "".
std::string key_on_line(const toml::table& table, std::size_t line, const std::string& group = {}) {
  for (const auto& [name, value] : table) {
    auto key = dotted(group, name.str());
    if (value.source().begin.line == line && !value.is_table())
      return key;
    if (const auto* sub = value.as_table())
      if (auto found = key_on_line(*sub, line, key); !found.empty())
        return found;
  }
  return {};
}

// A syntax error, by the key on its line where it has one: toml++ finds the key by
// parsing the lines before it and that key with a placeholder value.
config_error syntax_error(const toml::parse_error& e, const std::string& text, const std::string& path) {
  auto line = e.source().begin.line;
  auto place = path + " line " + std::to_string(line) + " column " + std::to_string(e.source().begin.column);
  std::size_t start = 0;  // of that line
  for (std::size_t n = 1; n < line && start < text.size(); ++n)
    start = std::min(text.find('\n', start), text.size() - 1) + 1;
  auto bad = text.substr(start, text.find('\n', start) - start);
  auto eq = bad.find('=');
  std::string key;
  if (eq != std::string::npos) {
    try {
      key = key_on_line(toml::parse(text.substr(0, start) + bad.substr(0, eq) + "= 0\n"), line);
    } catch (const toml::parse_error&) {  // no key there after all
    }
  }
  std::string description(e.description());
  if (key.empty())
    return {"config-file", "config-file: syntax error in " + place + ": " + description};
  auto value = bad.substr(eq + 1);
  value.erase(0, std::min(value.find_first_not_of(" \t"), value.size()));
  auto message = key + ": cannot parse `" + value + "` (" + place + ": " + description + "). " + syntax_hint;
  if (const auto* o = find_option(key))
    message += "; expected " + o->form;
  return {key, message};
}

std::string help_text() {
  std::string out = "gpumem's options, in the config file (--config-file=PATH, TOML) or on the command "
                    "line as --KEY=VALUE, which wins:\n";
  for (const auto& [flag, help] : option_flags())
    out.append("  ").append(flag).append("=...\n      ").append(help).append("\n");
  return out;
}

} // namespace

config_result<gpumem_config::parse_outcome>
gpumem_config::parse_command_line(int argc, char** argv, const char* default_file) {
  return parse_command_line(std::vector<std::string>(argv + std::min(argc, 1), argv + argc), default_file);
}

config_result<gpumem_config::parse_outcome>
gpumem_config::parse_command_line(std::vector<std::string> args, const char* default_file) {
  std::string path = default_file ? default_file : "";
  bool named = false;
  bool help = false;
  bool dump = false;
  std::vector<std::string> caf_args;
  std::vector<std::string> flags;
  for (const auto& arg : args) {
    if (arg.starts_with("--config-file="))
      path = arg.substr(14), named = true;
    else if (arg == "--help" || arg == "-h" || arg == "--long-help")
      help = true;
    else if (arg == "--dump-config")
      dump = true;
    else if (arg.starts_with("--caf."))
      caf_args.push_back("--" + arg.substr(6));  // CAF 0.17 names them without "caf."
    else if (arg.starts_with("--"))
      flags.push_back(arg);
    else
      return config_error{"", "unexpected argument \"" + arg + "\": options take the form "
                                "--gpumem.group.key=value"};
  }
  if (help) {
    std::fputs(help_text().c_str(), stdout);
    return parse_outcome::exit;
  }
  if (!caf_args.empty()) {
    std::istringstream no_file;
    if (auto err = parse(caf_args, no_file))
      return config_error{"", "cannot read the CAF options: " + render(err)};
  }

  runtime_config config;
  std::map<std::string, std::string> where;  // " (command line: ...)", " (path line 3)"
  try {
    if (std::ifstream in{path}; in) {
      std::ostringstream text;
      text << in.rdbuf();
      toml::table file;
      try {
        file = toml::parse(text.str(), path);
      } catch (const toml::parse_error& e) {
        return syntax_error(e, text.str(), path);
      }
      file_reader(config, where, path).walk(file, "");
    } else if (named) {
      return config_error{"config-file", "config-file: cannot open " + path};
    }
    for (const auto& flag : flags) {
      auto eq = flag.find('=');
      auto key = flag.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      where[key] = " (command line: " + flag + ")";
      const auto* o = find_option(key);
      if (o == nullptr)
        throw refused{key, "unknown option"};
      if (eq == std::string::npos)
        throw refused{key, "expected a value, " + o->form};
      o->set(config, *flag_value(std::string_view(flag).substr(eq + 1), o->list).get("v"));
    }
    check_relations(config, [&](const std::string& key) { return where.count(key) != 0; });
  } catch (const refused& r) {
    return config_error{r.key, r.key + ": " + r.what + where[r.key]};
  }
  if (dump) {
    std::fputs(config_file_text(config).c_str(), stdout);
    return parse_outcome::exit;
  }
  result_ = std::move(config);
  return parse_outcome::run;
}

config_result<runtime_config> gpumem_config::to_runtime_config() const {
  if (!result_)
    return config_error{"", "the configuration was not read: call parse_command_line() first"};
  return *result_;
}

// -- the documented file ------------------------------------------------------------

namespace {

// `text` as comment lines of at most 90 columns.
std::string comment(const std::string& text) {
  std::string out;
  std::string line = "#";
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (line.size() + 1 + word.size() > 90) {
      out.append(line).append("\n");
      line.resize(1);  // "#" (GCC 12 warns falsely of line = "#": -Wrestrict)
    }
    line.append(" ").append(word);
  }
  return out.append(line).append("\n");
}

} // namespace

std::string config_file_text(const runtime_config& values) {
  const runtime_config defaults;
  std::string out = comment(
    "gpumem's configuration (TOML), written from its option table (gpumem demo --dump-config "
    "prints one for the values in effect). Byte sizes are a number of bytes (1073741824) or a "
    "string with a binary suffix: \"512K\", \"256M\", \"1G\", \"2T\". Every key can be set on the "
    "command line too, which wins: --gpumem.pressure.period-ms=250, lists comma-separated "
    "(--gpumem.pressure.offloadable-tags=kv_cache,activations). Every value is checked at start-up: "
    "a wrong type, a value out of range or an unknown key refuses to start with a message naming "
    "the key. A key left out takes its default.");
  std::string group;
  for (const auto& o : options()) {
    auto dot = o.key.rfind('.');
    if (o.key.substr(0, dot) != group) {
      group = o.key.substr(0, dot);
      out += "\n[" + group + "]\n";
      for (const auto& [name, text] : groups())
        if (name == group)
          out += comment(text);
    }
    auto help = o.help;
    help[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(help[0])));
    out += comment(help + ": " + o.form + ". Default: " + o.show(defaults) + ".");
    // One per device replaces devices x capacity: the two cannot both be set.
    bool replaced = !values.host.capacities.empty()
                    && (o.key == "gpumem.host.devices" || o.key == "gpumem.host.capacity");
    out += (replaced ? "# " : "") + o.key.substr(dot + 1) + " = " + o.show(values) + "\n";
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> option_flags() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& o : options())
    out.emplace_back("--" + o.key, o.help + "; " + o.form + "; default " + o.show(runtime_config{}));
  return out;
}

} // namespace gpumem::actors
