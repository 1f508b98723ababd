// gpumem: the command-line tool.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "device_demo.hpp"
#include "serving_demo.hpp"
#include "replay/replayer.hpp"
#include "replay/trace_generator.hpp"

namespace {

constexpr const char* usage = R"(usage: gpumem <command> [options]

commands:
  demo      a serving-and-training day on the actor runtime: load weights through the
            balancer, serve a burst of concurrent KV-cache clients, push device 0 into
            memory pressure from outside, then an RL cycle (sleep, a trainer borrows the
            memory, wake) that verifies the weights byte for byte at their addresses
  device-demo (or demo --device-layer)
            the device layer end to end on every device: reserve, map, write, back up,
            unmap and release, map again at the same address, restore, verify, report
  trace-gen a seeded, reproducible LLM-serving allocation trace (weights, then requests
            whose KV cache grows as they generate, and per-step activations), as CSV
  replay    replays an allocation trace (CSV, gpumem's or RMM's) against gpumem's engine
            and simulated vLLM-style and PyTorch-caching allocators; reports peak
            physical and live bytes, fragmentation, OOMs and time per operation
  help      this text

demo options:
  --backend host|cuda|auto   device backend (default host, the embedded default)
  --devices N                emulated devices on the host backend (default 2)
  --capacity BYTES           memory of each emulated device (default 1G)
  --clients N                concurrent KV-cache clients (default 32)
  --rounds N                 rounds per client (default 8)
  --blocks N                 2 MiB KV-cache blocks a client holds per round (default 4)
  --config-file=PATH         an INI file like config/gpumem.conf (default ./gpumem.conf)
  --gpumem.GROUP.KEY=VALUE   any runtime option, e.g. --gpumem.pressure.period-ms=50

device-demo options (also demo --device-layer):
  --backend, --devices, --capacity as for demo
  --size BYTES               bytes to exercise per device (default 256M)
  --chunk BYTES              physical chunk size (default 32M)

trace-gen options (the trace goes to stdout without --out):
  --seed N                   random seed (default 1); same options and seed, same bytes
  --requests N               requests served (default 200)
  --concurrent N             most requests running at once (default 16)
  --model-size BYTES         weights, in tensors of 16 to 256 MiB (default 1G)
  --kv-block BYTES           one KV-cache allocation (default 2M)
  --kv-per-token BYTES       KV-cache bytes of one token (default 64K)
  --capacity BYTES           device memory; live bytes stay under 90% of it (default 4G)
  --out FILE                 write the trace to FILE

replay TRACE options (TRACE: a file, or - or nothing for stdin):
  --capacity BYTES           memory of the emulated device and the baselines (default 4G)
  --json FILE                also write the results as JSON to FILE (- for stdout)
BYTES take K, M and G suffixes (binary).
)";

int device_demo(const std::vector<std::string>& args) {
  using gpumem::tool::command_line;
  command_line line(args, {"backend", "devices", "capacity", "size", "chunk"});
  gpumem::tool::device_demo_options options;
  options.backend = line.text("backend", options.backend);
  options.host_devices = static_cast<int>(line.integer("devices", options.host_devices));
  options.host_capacity = line.bytes("capacity", options.host_capacity);
  options.bytes_per_device = line.bytes("size", options.bytes_per_device);
  options.chunk_size = line.bytes("chunk", options.chunk_size);
  if (options.host_devices < 1 || options.host_devices > 64)
    throw std::invalid_argument("--devices expects 1 to 64");
  if (options.bytes_per_device == 0 || options.chunk_size == 0)
    throw std::invalid_argument("--size and --chunk must be non-zero");
  return gpumem::tool::run_device_demo(options);
}

int demo(std::vector<std::string> args) {
  auto layer = std::find(args.begin(), args.end(), std::string("--device-layer"));
  if (layer != args.end()) {
    args.erase(layer);
    return device_demo(args);
  }
  return gpumem::tool::run_serving_demo(args);
}

std::size_t positive(const gpumem::tool::command_line& line, const std::string& key,
                     std::size_t fallback) {
  long value = line.integer(key, static_cast<long>(fallback));
  if (value < 1)
    throw std::invalid_argument("--" + key + " expects a positive integer");
  return static_cast<std::size_t>(value);
}

int trace_gen(const std::vector<std::string>& args) {
  using gpumem::tool::command_line;
  command_line line(args, {"seed", "requests", "concurrent", "model-size", "kv-block",
                           "kv-per-token", "capacity", "out"});
  gpumem::replay::trace_options options;
  long seed = line.integer("seed", static_cast<long>(options.seed));
  if (seed < 0)
    throw std::invalid_argument("--seed expects a non-negative integer");
  options.seed = static_cast<std::uint64_t>(seed);
  options.requests = positive(line, "requests", options.requests);
  options.max_concurrent = positive(line, "concurrent", options.max_concurrent);
  options.model_bytes = line.bytes("model-size", options.model_bytes);
  options.kv_block = line.bytes("kv-block", options.kv_block);
  options.kv_bytes_per_token = line.bytes("kv-per-token", options.kv_bytes_per_token);
  options.capacity = line.bytes("capacity", options.capacity);
  auto trace = gpumem::replay::generate_trace(options);
  if (!trace)
    throw std::invalid_argument(trace.error().message());

  auto path = line.text("out", "");
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

int replay(std::vector<std::string> args) {
  using gpumem::tool::command_line;
  // The one positional argument, the trace, comes first.
  std::string path = "-";
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    path = args[0];
    args.erase(args.begin());
  }
  command_line line(args, {"capacity", "json"});
  gpumem::replay::replay_options options;
  options.capacity = line.bytes("capacity", options.capacity);
  if (options.capacity < options.granularity)
    throw std::invalid_argument("--capacity must be at least 2M");

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

  auto json_path = line.text("json", "");
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

} // namespace

int main(int argc, char* argv[]) {
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::fputs(usage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  auto command = args[0];
  args.erase(args.begin());
  try {
    if (command == "demo")
      return demo(args);
    if (command == "device-demo")
      return device_demo(args);
    if (command == "trace-gen")
      return trace_gen(args);
    if (command == "replay")
      return replay(args);
    std::fprintf(stderr, "gpumem: unknown command '%s'\n\n%s", command.c_str(), usage);
    return 2;
  } catch (const std::invalid_argument& bad) {
    std::fprintf(stderr, "gpumem %s: %s\n", command.c_str(), bad.what());
    return 2;
  }
}
