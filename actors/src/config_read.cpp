// gpumem_config::to_runtime_config(): the config file's raw values under the command
// line's, every key checked, then each section read into a runtime_config.

#include <array>
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include "config_reader.hpp"
#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors {

using namespace detail;

namespace {

// [gpumem]
void read_gpumem_section(const reader& in, runtime_config& config) {
  const runtime_config defaults;
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
}

// [gpumem.balancer]
void read_balancer_section(const reader& in, runtime_config& config) {
  config.routing = choose(in, "gpumem.balancer.routing",
                          in.text("gpumem.balancer.routing", "least-loaded"),
                          std::array{std::pair{"least-loaded", routing_policy::least_loaded},
                                     std::pair{"round-robin", routing_policy::round_robin},
                                     std::pair{"tag-affinity", routing_policy::tag_affinity}});
  const runtime_config defaults;
  config.transition_timeout = std::chrono::milliseconds{in.integer(
    "gpumem.balancer.transition-timeout-ms", defaults.transition_timeout.count())};
  config.refresh_interval = std::chrono::milliseconds{in.integer(
    "gpumem.balancer.refresh-interval-ms", defaults.refresh_interval.count())};
}

runtime_config read_config(const reader& in) {
  runtime_config config;
  read_gpumem_section(in, config);
  read_host_section(in, config);
  read_engine_section(in, config);
  read_balancer_section(in, config);
  read_pressure_section(in, config);
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

} // namespace

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
