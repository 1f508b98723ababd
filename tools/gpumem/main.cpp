// gpumem: the command-line tool, one subcommand per job (CLI11: per-command --help
// and usage errors).

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "ctl.hpp"
#include "device_demo.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/control/server_options.hpp"
#include "node.hpp"
#include "cluster.hpp"
#include "serve.hpp"
#include "serving_demo.hpp"
#include "snapshot_html.hpp"
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

// The runtime's flags on a command that runs it: --config-file, --dump-config and every
// option of its table (--gpumem.group.key=value), passed on to gpumem_config.
class runtime_flags {
public:
  void add(CLI::App& command) {
    command.add_option("--config-file", config_file_, "a TOML file like config/gpumem.conf (default ./gpumem.conf)");
    command.add_flag("--dump-config", dump_, "print the configuration in effect as a documented file, and exit");
    for (const auto& [flag, help] : gpumem::actors::option_flags())
      command.add_option(flag, values_[flag], help)->group("Runtime options (config/gpumem.conf)");
    command.allow_extras();
  }

  // The arguments for gpumem_config: `chosen` (the command's own flags) after the file
  // and before the runtime options. The embedded default is the host backend
  // (config/gpumem.conf's), whatever the built-in "auto" says, unless the command line
  // or a named file chooses.
  std::vector<std::string> args(const CLI::App& command, const std::vector<std::string>& chosen,
                                bool backend_chosen) const {
    auto out = pass_through(command, true);
    if (!config_file_.empty())
      out.push_back("--config-file=" + config_file_);
    if (!backend_chosen && config_file_.empty() && command.count("--gpumem.backend") == 0)
      out.push_back("--gpumem.backend=host");
    out.insert(out.end(), chosen.begin(), chosen.end());
    for (const auto& [flag, value] : values_)
      if (command.count(flag) > 0)
        out.push_back(flag + "=" + value);
    if (dump_)
      out.push_back("--dump-config");
    return out;
  }

private:
  std::string config_file_;
  bool dump_ = false;
  std::map<std::string, std::string> values_;
};

// "TAG=SIZE" for serve --allocate and --cached.
std::pair<std::string, std::size_t> tagged_size(const std::string& text, const std::string& flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument(flag + " expects TAG=SIZE such as weights=64M, got '" + text + "'");
  auto size = bytes(text.substr(eq + 1), flag + " " + text.substr(0, eq));
  if (size == 0)
    throw std::invalid_argument(flag + " " + text + ": the size must be non-zero");
  return {text.substr(0, eq), size};
}

// -- the commands, once their flags are parsed ----------------------------------------

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

/// The flags of a command that publishes an actor (node, cluster): where to write its
/// port, and whether it may listen beyond loopback without TLS.
void add_listening_flags(CLI::App& command, std::string& port_file, bool& insecure) {
  command.add_option("--port-file", port_file,
                     "write the port it listens on to this file once it listens (for port 0)");
  command.add_flag("--insecure", insecure,
                   "listen beyond loopback without TLS, although nothing then authenticates a peer");
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
  runtime_flags demo_runtime;
  demo.add_option("--backend", backend, "device backend: host (the embedded default), cuda or auto");
  demo.add_option("--devices", devices, "emulated devices on the host backend")->capture_default_str();
  sizes.add(demo, "--capacity", capacity, "memory of each emulated device");
  demo.add_option("--clients", clients, "concurrent KV-cache clients")->capture_default_str();
  demo.add_option("--rounds", rounds, "rounds per client")->capture_default_str();
  demo.add_option("--blocks", blocks, "2 MiB KV-cache blocks a client holds per round")->capture_default_str();
  demo_runtime.add(demo);

  auto& serve = *app.add_subcommand(
    "serve", "runs the runtime from the configuration and serves it over HTTP on gpumem.control.listen "
             "until SIGINT or SIGTERM: vLLM's /sleep, /wake_up and /is_sleeping, SGLang's "
             "/release_memory_occupation and /resume_memory_occupation, /v1/status, /v1/stats, "
             "/v1/snapshot, /v1/map, /v1/trim, /v1/defragment, /healthz and Prometheus /metrics "
             "(docs/control.md)");
  gpumem::tool::serve_options serving_http;
  std::vector<std::string> held, freed;
  serve.add_option("--allocate", held,
                   "TAG=SIZE: allocate a region at start and hold it, so that sleep and wake have memory "
                   "to move without an engine (repeatable)");
  serve.add_option("--cached", freed,
                   "TAG=SIZE: allocate a region at start, after those held, and free it at once, so that its "
                   "segment stays cached (within gpumem.engine.cache-limit) for a trim or the map to show "
                   "(repeatable)");
  serve.add_option("--port-file", serving_http.port_file,
                   "write the port it listens on to this file once it listens (for port 0)");
  runtime_flags serve_runtime;
  serve_runtime.add(serve);

  auto& node = *app.add_subcommand(
    "node", "runs the runtime from the configuration and serves it to clients in other processes over "
            "CAF's network layer on gpumem.node.listen (client::connect_node) until SIGINT or SIGTERM");
  gpumem::tool::node_command_options serving_node;
  add_listening_flags(node, serving_node.port_file, serving_node.insecure);
  node.add_flag("--cluster", serving_node.cluster,
                "host a cluster too, as gpumem cluster does, on gpumem.cluster.listen: it watches this node "
                "and those of gpumem.cluster.nodes");
  node.add_option("--cluster-port-file", serving_node.cluster_port_file,
                  "with --cluster: write the cluster's port to this file once it listens");
  runtime_flags node_runtime;
  node_runtime.add(node);

  auto& cluster = *app.add_subcommand(
    "cluster", "watches the nodes of gpumem.cluster.nodes (and those that join) and serves them as one on "
               "gpumem.cluster.listen: status, statistics, placement, collective sleep and wake (gpumem ctl "
               "--cluster), until SIGINT or SIGTERM");
  gpumem::tool::cluster_command_options serving_cluster;
  add_listening_flags(cluster, serving_cluster.port_file, serving_cluster.insecure);
  runtime_flags cluster_runtime;
  cluster_runtime.add(cluster);

  auto& ctl = *app.add_subcommand(
    "ctl", "the control plane of a running gpumem serve, over HTTP: prints the answer's JSON (map: writes the "
           "page to --out); exits 0 when done, 1 when the server refused or failed or --out cannot be "
           "written, 2 on bad usage, 3 when no answer came");
  gpumem::tool::ctl_options controlling;
  controlling.url = "http://" + gpumem::control::server_options{}.listen;
  long ctl_timeout = static_cast<long>(controlling.timeout.count());
  ctl.add_option("--url", controlling.url, "where gpumem serve listens")->capture_default_str();
  ctl.add_option("--timeout", ctl_timeout, "seconds to wait for the answer")->capture_default_str();
  auto* ctl_node = ctl.add_option("--node", controlling.node,
                                   "host:port of a gpumem node: its status, stats, sleep and wake over CAF's "
                                   "network layer instead of --url");
  ctl.add_option("--cluster", controlling.cluster,
                 "host:port of a gpumem cluster: status, stats, sleep and wake of every node over CAF's "
                 "network layer instead of --url")->excludes(ctl_node);
  ctl.add_option("--certificate", controlling.tls.certificate,
                 "--node or --cluster over mutual TLS: this side's certificate (PEM)");
  ctl.add_option("--key", controlling.tls.key, "its private key (PEM)");
  ctl.add_option("--ca-file", controlling.tls.ca_file, "the CA that signs the peer's certificate (PEM)");
  ctl.require_subcommand(1);
  ctl.fallthrough();  // --url and --timeout after the command too
  ctl.add_subcommand("status", "every device: state, pressure, memory, tags asleep");
  ctl.add_subcommand("stats", "the statistics grid by device and tag");
  ctl.add_subcommand("snapshot", "one device's snapshot (docs/snapshot.md)")
    ->add_option("--device", controlling.device, "the device")->required()->check(CLI::NonNegativeNumber);
  auto& ctl_map = *ctl.add_subcommand(
    "map", "the memory map (GET /v1/map): one self-contained HTML page, written to --out");
  ctl_map.add_option("--out", controlling.out, "the file to write (- for stdout); replaced only once the "
                                               "server answered the page")->required();
  ctl_map.add_option("--device", controlling.device, "only this device (default: every device)")
    ->check(CLI::NonNegativeNumber);
  auto& ctl_sleep = *ctl.add_subcommand("sleep", "puts tags to sleep on every device (vLLM's levels)");
  ctl_sleep.add_option("--level", controlling.level,
                       "1: back up weights, discard the rest; 2: discard everything; 0: back up everything")
    ->capture_default_str()->check(CLI::Range(0, 2));
  ctl_sleep.add_option("--tags", controlling.tags, "only these tags (default: every tag)")->delimiter(',');
  ctl_sleep.add_option("--nodes", controlling.nodes,
                       "--cluster: only these nodes, host:port (default: every node; all must be up)")->delimiter(',');
  auto& ctl_wake = *ctl.add_subcommand("wake", "wakes sleeping tags on every device");
  ctl_wake.add_option("--tags", controlling.tags, "only these tags (default: every sleeping tag)")->delimiter(',');
  ctl_wake.add_option("--nodes", controlling.nodes,
                      "--cluster: only these nodes, host:port (default: every node; all must be up)")->delimiter(',');
  for (const auto& [name, what] : {std::pair{"trim", "returns cached free segments to the devices"},
                                   std::pair{"defragment", "trims and releases the free tails of live segments"}})
    ctl.add_subcommand(name, what)
      ->add_option("--device", controlling.device, "only this device (default: each in turn)")
      ->check(CLI::NonNegativeNumber);

  auto& snap = *app.add_subcommand(
    "snapshot", "draws snapshot files (docs/snapshot.md) as the memory map GET /v1/map serves: one "
                "self-contained HTML page, written to --html");
  snap.footer("The page needs no network: per file, the arena's segments (mapped, cached, released while "
              "asleep) with their blocks coloured by tag and state (size, tag, region and age on hover), the "
              "statistics grid, and fragmentation by tag (docs/control.md, \"The memory map\"). A snapshot "
              "file is what gpumem ctl snapshot --device N prints. Every file is checked before anything is "
              "written. Exits 0 when written; 1 when a file cannot be read or is not a snapshot (the page is "
              "then left as it was) or the page cannot be written; 2 on bad usage.\n"
              "Example: gpumem snapshot --html map.html device0.json device1.json");
  std::vector<std::string> snapshot_files;
  std::string html_out;
  snap.add_option("files", snapshot_files, "snapshot JSON files, one section each in this order")->required();
  snap.add_option("--html", html_out, "write the page to this file (- for stdout), replaced whole")->required();
  snap.allow_extras();

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
  gen.add_option("--out", out, "write the trace to this file");
  gen.allow_extras();

  auto& rep = *app.add_subcommand(
    "replay", "replays an allocation trace (CSV, gpumem's or RMM's) against gpumem's engine and "
              "simulated vLLM-style and PyTorch-caching allocators; reports peak physical and live "
              "bytes, fragmentation, OOMs and time per operation");
  gpumem::replay::replay_options replaying;
  std::string trace_path = "-", json;
  rep.add_option("trace", trace_path, "the trace: a file, or - (the default) for stdin");
  sizes.add(rep, "--capacity", replaying.capacity, "memory of the emulated device and the baselines");
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
      std::vector<std::string> chosen;
      if (demo.count("--backend") > 0) {
        check_backend(backend);
        chosen.push_back("--gpumem.backend=" + backend);
      }
      sizes.apply();
      if (demo.count("--devices") > 0)
        chosen.push_back("--gpumem.host.devices=" + std::to_string(in_range(devices, "--devices", 1, 64)));
      if (demo.count("--capacity") > 0)
        chosen.push_back("--gpumem.host.capacity=" + std::to_string(capacity));
      serving.runtime_args = demo_runtime.args(demo, chosen, demo.count("--backend") > 0);
      serving.clients = static_cast<int>(in_range(clients, "--clients", 1, 1024));
      serving.rounds = static_cast<int>(in_range(rounds, "--rounds", 1, 100000));
      serving.blocks = static_cast<int>(in_range(blocks, "--blocks", 1, 64));
      return gpumem::tool::run_serving_demo(serving);
    }
    if (serve.parsed()) {
      for (const auto& text : held)
        serving_http.allocations.push_back(tagged_size(text, "--allocate"));
      for (const auto& text : freed)
        serving_http.cached.push_back(tagged_size(text, "--cached"));
      serving_http.runtime_args = serve_runtime.args(serve, {}, false);
      return gpumem::tool::run_serve(serving_http);
    }
    if (node.parsed()) {
      serving_node.runtime_args = node_runtime.args(node, {}, false);
      return gpumem::tool::run_node(serving_node);
    }
    if (cluster.parsed()) {
      serving_cluster.runtime_args = cluster_runtime.args(cluster, {}, false);
      return gpumem::tool::run_cluster(serving_cluster);
    }
    if (ctl.parsed()) {
      controlling.command = ctl.get_subcommands().front()->get_name();
      controlling.timeout = std::chrono::seconds{in_range(ctl_timeout, "--timeout", 1, 86400)};
      return gpumem::tool::run_ctl(controlling);
    }
    if (snap.parsed()) {
      pass_through(snap, false);
      return gpumem::tool::run_snapshot_html(snapshot_files, html_out);
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
      sizes.apply();
      return trace_gen(trace, out);
    }
    pass_through(rep, false);
    sizes.apply();
    if (replaying.capacity < replaying.granularity)
      throw std::invalid_argument("--capacity must be at least 2M");
    return replay(trace_path, replaying, json);
  } catch (const std::invalid_argument& bad) {
    std::fprintf(stderr, "gpumem %s: %s\n", command.c_str(), bad.what());
    return 2;
  }
}
