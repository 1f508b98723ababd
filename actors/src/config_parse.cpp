// gpumem_config::parse_command_line(): lets CAF read the command line and the config
// file, and turns CAF's parse errors into messages that name the key.

#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/pec.hpp>
#include <caf/sec.hpp>

#include "config_options.hpp"
#include "config_origin.hpp"
#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors {

using namespace detail;

namespace {

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

} // namespace gpumem::actors
