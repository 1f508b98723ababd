#pragma once
// The runtime's configuration: the composition of its components' options (each
// component owns its settings and their defaults), and gpumem_config, which reads it
// from one TOML file and the command line (--gpumem.group.key=value) through one
// option table (config_options.cpp). Each option's name, type, range and help are
// written there once; the checks, the help text and the documented config file
// (config/gpumem.conf, printed by --dump-config) all derive from it.

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <spdlog/common.h>

#include "gpumem/actors/balancer.hpp"
#include "gpumem/actors/byte_size.hpp"
#include "gpumem/actors/device_allocator.hpp"
#include "gpumem/actors/cluster.hpp"
#include "gpumem/actors/node.hpp"
#include "gpumem/actors/pressure_monitor.hpp"
#include "gpumem/actors/scheduler.hpp"
#include "gpumem/control/server_options.hpp"
#include "gpumem/core/engine_config.hpp"
#include "gpumem/cuda/basic_result.hpp"
#include "gpumem/cuda/cuda_backend_options.hpp"
#include "gpumem/cuda/host_backend.hpp"

namespace gpumem::actors {

/// Which device layer: "auto" (CUDA where a VMM-capable GPU exists, else host),
/// "host" (emulated devices in host memory) or "cuda".
enum class backend_kind { automatic, host, cuda };
inline constexpr std::array<std::pair<std::string_view, backend_kind>, 3> backend_kind_names{
  {{"auto", backend_kind::automatic}, {"host", backend_kind::host}, {"cuda", backend_kind::cuda}}};
/// "auto", "host" or "cuda": what cuda::make_backend() takes.
const char* to_string(backend_kind kind) noexcept;

/// The host backend's emulated devices (used where the backend is host, or auto
/// falls back to host).
struct host_emulation_config {
  int devices = 2;
  std::size_t capacity = std::size_t{1} << 30;  // of each device
  /// One capacity per device; when non-empty it replaces devices x capacity.
  std::vector<std::size_t> capacities;
  std::size_t granularity = std::size_t{2} << 20;

  /// One capacity per emulated device.
  std::vector<std::size_t> device_capacities() const;
};

struct runtime_config {
  backend_kind backend = backend_kind::automatic;
  host_emulation_config host;
  /// The CUDA backend's (used where the backend is cuda, or auto finds a GPU).
  cuda::cuda_backend_options cuda;
  /// Every engine's settings; `device` is set per device by engine_config_for().
  core::engine_config engine;
  /// Every device allocator's; the runtime sets its backend, and its pressure
  /// thresholds to the monitor's.
  device_allocator_options allocator;
  balancer_options balancer;
  pressure_settings pressure;
  spdlog::level::level_enum log_level = spdlog::level::info;
  /// The HTTP control plane, for the host that serves it (gpumem serve); the
  /// runtime itself starts no server.
  control::server_options control;
  /// Where gpumem node serves the runtime over the network.
  node_options node;
  /// The nodes gpumem cluster watches, and where it serves them.
  cluster_options cluster;

  /// The engine settings for one device.
  core::engine_config engine_config_for(int device) const;
  /// The host backend's devices, one per capacity.
  cuda::host_backend_config host_backend_config() const;
};

/// Why a configuration was refused. `message` is the whole line for the user, and
/// starts with the key: "gpumem.pressure.warning: expected a fraction ..., got 1.7
/// (command line: --gpumem.pressure.warning=1.7)".
struct config_error {
  std::string key;      // "gpumem.pressure.warning"; "config-file" or "" where no key applies
  std::string message;
};

template <class T>
using config_result = basic_result<T, config_error>;

/// The actor system's configuration plus gpumem's own, read once by
/// parse_command_line(): the file (TOML, [gpumem], [gpumem.host], ...), then the
/// command line's --gpumem.group.key=value over it. --caf.* options go to CAF.
class gpumem_config : public caf::actor_system_config {
public:
  gpumem_config() { use_prompt_wakeups(*this); }

  /// Read where neither --config-file nor the caller names another file. A missing
  /// default file means built-in defaults; a missing --config-file is an error.
  static constexpr const char* default_config_file = "gpumem.conf";

  enum class parse_outcome {
    run,   // parsed: call to_runtime_config()
    exit,  // --help or --dump-config printed its text: exit 0
  };

  /// Reads the file (--config-file=PATH, else `default_file`) and the command line,
  /// and checks every value and the relations between them. Refuses unknown keys and
  /// options, syntax errors and arguments that are not options, naming the key and
  /// where its value came from.
  config_result<parse_outcome> parse_command_line(int argc, char** argv,
                                                  const char* default_file = default_config_file);
  config_result<parse_outcome> parse_command_line(std::vector<std::string> args,
                                                  const char* default_file = default_config_file);

  /// What parse_command_line() read (its error, where it refused).
  config_result<runtime_config> to_runtime_config() const;

private:
  std::optional<config_result<runtime_config>> result_;
};

/// A config file documenting every option (help, form, default) that sets each to
/// its value in `values`: --dump-config prints it, and config/gpumem.conf is it for
/// the shipped values.
std::string config_file_text(const runtime_config& values);

/// Every option as a flag and its one-line help, for a command's --help.
std::vector<std::pair<std::string, std::string>> option_flags();

} // namespace gpumem::actors
