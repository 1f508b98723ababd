// gpumem: the command-line tool, one subcommand per job (CLI11: per-command --help
// and usage errors).

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "device_demo.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "serving_demo.hpp"
#include "replay/replayer.hpp"
#include "replay/trace_generator.hpp"

namespace {

// A byte size (the configuration's parser: "4096", "64M", "1T"), or an error naming the flag.
std::size_t bytes(const std::string& text, const std::string& flag) {
  std::size_t n = 0;
  if (!gpumem::parse_byte_size(text, n))
    throw std::invalid_argument(flag + " expects a byte size such as 4096, 64M or 2G, got '" + text + "'");
  return n;
}

long in_range(long value, const std::string& flag, long least, long most) {
  if (value < least || value > most)
    throw std::invalid_argument(flag + " expects " + std::to_string(least) + " to " + std::to_string(most));
  return value;
}

std::size_t positive(long value, const std::string& flag) {
  if (value < 1)
    throw std::invalid_argument(flag + " expects a positive integer");
  return static_cast<std::size_t>(value);
}

void check_backend(const std::string& backend) {
  if (backend != "host" && backend != "cuda" && backend != "auto")
    throw std::invalid_argument("unknown backend '" + backend + "' (expected auto, host or cuda)");
}

// Byte-size flags: CLI11 reads the text, the one byte-size parser its value; a target
// keeps its default (its struct's) unless its flag is given.
class byte_flags {
public:
  void add(CLI::App& command, const std::string& flag, std::size_t& target, const std::string& help) {
    auto& text = texts_.emplace_back();
    auto* option = command.add_option(flag, text, help + " (default " + gpumem::format_bytes(target) + ")");
    targets_.push_back({option, &text, &target});
  }
  void apply() const {
    for (const auto& [option, text, target] : targets_)
      if (option->count() > 0)
        *target = bytes(*text, option->get_name());
  }

private:
  std::deque<std::string> texts_;
  std::vector<std::tuple<const CLI::Option*, std::string*, std::size_t*>> targets_;
};

// -- the commands, once their flags are parsed ----------------------------------------

/// The shortest text that reads back as `v`: 0.9.
std::string shortest(double v) {
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

int trace_gen(const gpumem::replay::trace_options& options, const std::string& path) {
  auto trace = gpumem::replay::generate_trace(options);
  if (!trace)
    throw std::invalid_argument(trace.error().message());
  if (path.empty()) {
    gpumem::replay::write_trace(std::cout, trace->entries);
    std::cout.flush();
  } else {
    std::ofstream out(path);
    gpumem::replay::write_trace(out, trace->entries);
    out.close();
    if (!out) {
      std::fprintf(stderr, "gpumem trace-gen: cannot write '%s'\n", path.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "gpumem trace-gen: %zu entries over %zu steps; weights %s; peak live %s\n",
               trace->entries.size(), trace->steps, gpumem::format_bytes(trace->weight_bytes).c_str(),
               gpumem::format_bytes(trace->peak_live_bytes).c_str());
  return 0;
}

int replay(const std::string& path, const gpumem::replay::replay_options& options,
           const std::string& json_path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "gpumem replay: cannot open '%s'\n", path.c_str());
      return 1;
    }
    text << in.rdbuf();
  }
  auto trace = gpumem::core::read_allocation_log(text);
  if (!trace) {
    std::fprintf(stderr, "gpumem replay: %s: %s\n", path == "-" ? "stdin" : path.c_str(),
                 trace.error().message().c_str());
    return 1;
  }
  auto report = gpumem::replay::replay_all(*trace, options);
  if (!report) {
    std::fprintf(stderr, "gpumem replay: %s\n", report.error().to_string().c_str());
    return 1;
  }
  std::fputs(gpumem::replay::format_table(*report).c_str(), stdout);

  if (json_path == "-") {
    std::printf("%s\n", gpumem::replay::to_json(*report).c_str());
  } else if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << gpumem::replay::to_json(*report) << '\n';
    out.close();
    if (!out) {
      std::fprintf(stderr, "gpumem replay: cannot write '%s'\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}

// An argument no flag took: refused, except --caf.* options, which go to CAF.
std::vector<std::string> pass_through(const CLI::App& command, bool caf_options) {
  std::vector<std::string> passed;
  for (const auto& arg : command.remaining()) {
    if (caf_options && arg.rfind("--caf.", 0) == 0)
      passed.push_back(arg);
    else if (arg.rfind("-", 0) == 0)
      throw std::invalid_argument("unknown option '" + arg.substr(0, arg.find('=')) + "'");
    else
      throw std::invalid_argument("unexpected argument '" + arg + "'");
  }
  return passed;
}

} // namespace

int main(int argc, char* argv[]) {
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  CLI::App app{"gpumem: GPU memory pooled, slept and woken by actors.", "gpumem"};
  app.require_subcommand(1);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "help")
    args[0] = "--help";
  // `demo --device-layer` is `device-demo`.
  if (auto layer = std::find(args.begin(), args.end(), "--device-layer");
      !args.empty() && args[0] == "demo" && layer != args.end()) {
    args.erase(layer);
    args[0] = "device-demo";
  }

  byte_flags sizes;
  auto& demo = *app.add_subcommand(
    "demo", "a serving-and-training day on the actor runtime: load weights through the balancer, "
            "serve a burst of concurrent KV-cache clients, push device 0 into memory pressure from "
            "outside, then an RL cycle (sleep, a trainer borrows the memory, wake) that verifies the "
            "weights byte for byte at their addresses (demo --device-layer: device-demo)");
  gpumem::tool::serving_options serving;
  const gpumem::actors::host_emulation_config host;
  std::string backend = "host";
  long devices = host.devices;
  std::size_t capacity = host.capacity;
  long clients = serving.clients, rounds = serving.rounds, blocks = serving.blocks;
  std::string config_file;
  bool dump = false;
  demo.add_option("--backend", backend, "device backend: host (the embedded default), cuda or auto");
  demo.add_option("--devices", devices, "emulated devices on the host backend")->capture_default_str();
  sizes.add(demo, "--capacity", capacity, "memory of each emulated device");
  demo.add_option("--clients", clients, "concurrent KV-cache clients")->capture_default_str();
  demo.add_option("--rounds", rounds, "rounds per client")->capture_default_str();
  demo.add_option("--blocks", blocks, "2 MiB KV-cache blocks a client holds per round")->capture_default_str();
  demo.add_option("--config-file", config_file, "a TOML file like config/gpumem.conf (default ./gpumem.conf)");
  demo.add_flag("--dump-config", dump, "print the configuration in effect as a documented file, and exit");
  // The runtime's options, from its option table.
  std::map<std::string, std::string> runtime_values;
  for (const auto& [flag, help] : gpumem::actors::option_flags())
    demo.add_option(flag, runtime_values[flag], help)->group("Runtime options (config/gpumem.conf)");
  demo.allow_extras();

  auto& device = *app.add_subcommand(
    "device-demo", "the device layer end to end on every device: reserve, map, write, back up, unmap "
                   "and release, map again at the same address, restore, verify, report");
  gpumem::tool::device_demo_options layer;
  long layer_devices = layer.host_devices;
  device.add_option("--backend", layer.backend, "device backend: host (the embedded default), cuda or auto");
  device.add_option("--devices", layer_devices, "emulated devices on the host backend")->capture_default_str();
  sizes.add(device, "--capacity", layer.host_capacity, "memory of each emulated device");
  sizes.add(device, "--size", layer.bytes_per_device, "bytes to exercise per device");
  sizes.add(device, "--chunk", layer.chunk_size, "physical chunk size");
  device.allow_extras();

  auto& gen = *app.add_subcommand(
    "trace-gen", "a seeded, reproducible LLM-serving allocation trace (weights, then requests whose KV "
                 "cache grows as they generate, and per-step activations), as CSV on stdout or --out");
  gpumem::replay::trace_options trace;
  long seed = static_cast<long>(trace.seed), requests = static_cast<long>(trace.requests),
       concurrent = static_cast<long>(trace.max_concurrent);
  std::string out;
  gen.add_option("--seed", seed, "random seed; same options and seed, same bytes")->capture_default_str();
  gen.add_option("--requests", requests, "requests served")->capture_default_str();
  gen.add_option("--concurrent", concurrent, "most requests running at once")->capture_default_str();
  sizes.add(gen, "--model-size", trace.model_bytes, "weights, in tensors of 16 to 256 MiB");
  sizes.add(gen, "--kv-block", trace.kv_block, "one KV-cache allocation");
  sizes.add(gen, "--kv-per-token", trace.kv_bytes_per_token, "KV-cache bytes of one token");
  sizes.add(gen, "--capacity", trace.capacity, "device memory; live bytes stay under 90% of it");
  bool bursty = false;
  std::optional<double> swing;
  gen.add_flag("--bursty", bursty,
               "bursty serving: the arrival rate swings around its mean (--swing "
                 + shortest(gpumem::replay::bursty_swing) + ")");
  gen.add_option("--swing", swing,
                 "the arrival rate swings by this fraction of its mean, from 0 (steady, the "
                 "default) to below 1, as a sine of the trace time");
  gen.add_option("--swing-period", trace.swing_period, "seconds of trace time per swing")
    ->capture_default_str();
  gen.add_option("--out", out, "write the trace to this file");
  gen.allow_extras();

  auto& rep = *app.add_subcommand(
    "replay", "replays an allocation trace (CSV, gpumem's or RMM's) against gpumem's engine and "
              "simulated vLLM-style and PyTorch-caching allocators; reports peak physical and live "
              "bytes, fragmentation, OOMs and time per operation, then the physical memory each "
              "created, reused and released (gpumem: with its backend's time apart from its own)");
  gpumem::replay::replay_options replaying;
  std::string trace_path = "-", json;
  rep.add_option("trace", trace_path, "the trace: a file, or - (the default) for stdin");
  sizes.add(rep, "--capacity", replaying.capacity, "memory of the emulated device and the baselines");
  long cache_decay_ms = static_cast<long>(replaying.engine.cache_decay.count());
  rep.add_option("--cache-decay-ms", cache_decay_ms,
                 "gpumem's cache: free segments go back once idle this long in the trace's time "
                 "(gpumem.engine.cache-decay-ms)")
    ->capture_default_str();
  sizes.add(rep, "--cache-limit", replaying.engine.cache_limit,
            "gpumem's cache: at most this much kept, 0 for no limit (gpumem.engine.cache-limit)");
  rep.add_option("--json", json, "also write the results as JSON to this file (- for stdout)");
  rep.allow_extras();
  app.footer("Byte sizes take K, M, G and T suffixes (binary). gpumem COMMAND --help: that command's options.");

  if (args.empty()) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  std::string command = args[0];
  try {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (app.get_subcommands().empty() && command.rfind("-", 0) != 0)
      std::fprintf(stderr, "gpumem: unknown command '%s'\n\n%s", command.c_str(), app.help().c_str());
    else
      std::fprintf(stderr, "gpumem %s: %s\nRun gpumem %s --help for its options.\n", command.c_str(),
                   e.what(), command.c_str());
    return 2;
  }

  try {
    if (demo.parsed()) {
      serving.runtime_args = pass_through(demo, true);
      if (!config_file.empty())
        serving.runtime_args.push_back("--config-file=" + config_file);
      if (demo.count("--backend") > 0) {
        check_backend(backend);
        serving.runtime_args.push_back("--gpumem.backend=" + backend);
      } else if (config_file.empty() && demo.count("--gpumem.backend") == 0) {
        // The embedded default is the host backend (config/gpumem.conf's), whatever the
        // built-in "auto" says, unless the command line or a named file chooses.
        serving.runtime_args.push_back("--gpumem.backend=host");
      }
      sizes.apply();
      if (demo.count("--devices") > 0)
        serving.runtime_args.push_back("--gpumem.host.devices="
                                       + std::to_string(in_range(devices, "--devices", 1, 64)));
      if (demo.count("--capacity") > 0)
        serving.runtime_args.push_back("--gpumem.host.capacity=" + std::to_string(capacity));
      for (const auto& [flag, value] : runtime_values)
        if (demo.count(flag) > 0)
          serving.runtime_args.push_back(flag + "=" + value);
      if (dump)
        serving.runtime_args.push_back("--dump-config");
      serving.clients = static_cast<int>(in_range(clients, "--clients", 1, 1024));
      serving.rounds = static_cast<int>(in_range(rounds, "--rounds", 1, 100000));
      serving.blocks = static_cast<int>(in_range(blocks, "--blocks", 1, 64));
      return gpumem::tool::run_serving_demo(serving);
    }
    if (device.parsed()) {
      pass_through(device, false);
      check_backend(layer.backend);
      layer.host_devices = static_cast<int>(in_range(layer_devices, "--devices", 1, 64));
      sizes.apply();
      if (layer.bytes_per_device == 0 || layer.chunk_size == 0)
        throw std::invalid_argument("--size and --chunk must be non-zero");
      return gpumem::tool::run_device_demo(layer);
    }
    if (gen.parsed()) {
      pass_through(gen, false);
      if (seed < 0)
        throw std::invalid_argument("--seed expects a non-negative integer");
      trace.seed = static_cast<std::uint64_t>(seed);
      trace.requests = positive(requests, "--requests");
      trace.max_concurrent = positive(concurrent, "--concurrent");
      trace.arrival_swing = swing.value_or(bursty ? gpumem::replay::bursty_swing : 0.0);
      sizes.apply();
      return trace_gen(trace, out);
    }
    pass_through(rep, false);
    sizes.apply();
    if (replaying.capacity < replaying.granularity)
      throw std::invalid_argument("--capacity must be at least 2M");
    replaying.engine.cache_decay =
      std::chrono::milliseconds{in_range(cache_decay_ms, "--cache-decay-ms", 0, 86'400'000)};
    return replay(trace_path, replaying, json);
  } catch (const std::invalid_argument& bad) {
    std::fprintf(stderr, "gpumem %s: %s\n", command.c_str(), bad.what());
    return 2;
  }
}
