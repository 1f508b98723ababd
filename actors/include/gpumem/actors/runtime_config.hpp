#pragma once
// The actor runtime's configuration: which backend, the host emulation, every engine
// setting, allocation strategies, the balancer's routing, the pressure monitor, and
// what happens to requests while a tag sleeps.
//
// gpumem_config declares every option with CAF (INI file, --gpumem.group.key=value on
// the command line, --help), and to_runtime_config() reads them back and checks each
// one. CAF 0.17 silently ignores an INI value of the wrong type (the default stays),
// so nothing here reads CAF's typed copies: to_runtime_config() reads the raw values
// CAF keeps in `content` and checks their type itself, so `period-ms = "fast"` or
// `warning = "high"` refuses to start with a message naming the key.

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <spdlog/common.h>

#include "gpumem/core/engine_config.hpp"
#include "gpumem/core/engine_types.hpp"
#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/cuda/host_backend.hpp"

namespace gpumem::actors {

/// Which device layer: "auto" (CUDA where a VMM-capable GPU exists, else host),
/// "host" (emulated devices in host memory) or "cuda".
enum class backend_kind { automatic, host, cuda };
/// "auto", "host" or "cuda": what cuda::make_backend() takes.
const char* to_string(backend_kind kind) noexcept;

/// How the balancer picks a device for a request that names none.
enum class routing_policy { least_loaded, round_robin, tag_affinity };
/// "least-loaded", "round-robin", "tag-affinity".
const char* to_string(routing_policy policy) noexcept;

/// What an allocation for a sleeping tag does: wait for the wake, or fail at once
/// with device_asleep (naming the sleeping tag or the transition under way).
enum class asleep_behaviour { queue, fail };
/// "queue", "fail".
const char* to_string(asleep_behaviour behaviour) noexcept;

/// The host backend's emulated devices (used where the backend is host, or auto
/// falls back to host).
struct host_emulation_config {
  /// One capacity per emulated device; the device count is its size.
  std::vector<std::size_t> capacities{std::size_t{1} << 30, std::size_t{1} << 30};
  std::size_t granularity = std::size_t{2} << 20;
};

/// The pressure monitor: polls every device's memory in use (as a fraction of its
/// total) and responds when it crosses the thresholds.
struct pressure_config {
  std::chrono::milliseconds period{100};
  double warning = 0.80;     // 0 < warning < critical
  double critical = 0.92;    // critical <= 1
  double hysteresis = 0.05;  // a level is left below its threshold minus this; < warning
  bool trim_at_warning = true;       // release cached segments at warning
  bool offload_at_critical = true;   // defragment, then offload offloadable tags
  std::vector<std::string> offloadable_tags{"kv_cache"};
  bool wake_on_normal = true;        // wake offloaded tags once back to normal
};

struct runtime_config {
  backend_kind backend = backend_kind::automatic;
  host_emulation_config host;
  /// Every engine's settings; `device` is set per device by engine_config_for().
  core::engine_config engine;
  core::strategy default_strategy = core::strategy::pooled;
  /// Per-tag overrides of default_strategy ("kv_cache=dedicated").
  std::map<std::string, core::strategy, std::less<>> tag_strategies;
  routing_policy routing = routing_policy::least_loaded;
  /// The balancer's deadline for each device's sleep or wake (they copy whole tags).
  std::chrono::milliseconds transition_timeout{300000};
  /// How often the balancer refreshes every device's free memory; zero: never.
  std::chrono::milliseconds refresh_interval{50};
  pressure_config pressure;
  asleep_behaviour while_asleep = asleep_behaviour::queue;
  /// Every request to a remote actor uses this timeout (never infinite: a request to
  /// a dead remote proxy otherwise hangs).
  std::chrono::milliseconds request_timeout{5000};
  spdlog::level::level_enum log_level = spdlog::level::info;

  /// The strategy for an allocation of `tag` that asks for none in particular.
  core::strategy strategy_for(std::string_view tag) const;
  /// The engine settings for one device.
  core::engine_config engine_config_for(int device) const;
  /// The host backend's devices, one per capacity.
  cuda::host_backend_config host_backend_config() const;
};

/// Why a configuration was refused. `message` is the whole line for the user, and
/// starts with the key: "gpumem.pressure.warning: expected a fraction ..., got 1.7".
struct config_error {
  std::string key;      // "gpumem.pressure.warning"; "config-file" or "" where no key applies
  std::string message;
};

template <class T>
using config_result = basic_result<T, config_error>;

/// The actor system's configuration with every gpumem option declared: in the INI
/// file under [gpumem], [gpumem.host], [gpumem.engine], [gpumem.balancer] and
/// [gpumem.pressure]; on the command line as --gpumem.pressure.period-ms=250.
class gpumem_config : public caf::actor_system_config {
public:
  /// Read where neither --config-file nor the caller names another file. A missing
  /// default file means built-in defaults; a missing --config-file is an error.
  static constexpr const char* default_config_file = "gpumem.conf";

  gpumem_config();

  enum class parse_outcome {
    run,   // parsed: call to_runtime_config()
    exit,  // --help, --long-help or --dump-config printed its text: exit 0
  };

  /// Parses the command line and the config file (--config-file=..., else
  /// `default_file`). Command-line values win over the file's. Refuses unknown
  /// options, INI syntax errors (naming the key on that line) and arguments that
  /// are not options (CAF would silently stop parsing at the first one).
  config_result<parse_outcome> parse_command_line(int argc, char** argv,
                                                  const char* default_file = default_config_file);
  config_result<parse_outcome> parse_command_line(std::vector<std::string> args,
                                                  const char* default_file = default_config_file);

  /// Reads and checks every gpumem option: types, ranges, names, the relations
  /// between them; refuses unknown keys under gpumem (a misspelt key would
  /// otherwise be ignored). Unset options take runtime_config's defaults.
  config_result<runtime_config> to_runtime_config() const;

private:
  std::vector<std::string> args_;  // the command line, to say where a value came from
};

/// Parses a byte size: a non-negative integer with an optional binary suffix:
/// "4096", "512K", "256M", "1G", "2T" (also "KiB", "MiB", "GiB", "TiB", "B").
/// Returns false if `text` is none of these or overflows.
bool parse_byte_size(std::string_view text, std::size_t& bytes) noexcept;

} // namespace gpumem::actors
