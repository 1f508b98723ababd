// gpumem: the command-line tool.

#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "device_demo.hpp"

namespace {

constexpr const char* usage = R"(usage: gpumem <command> [options]

commands:
  demo      the device layer end to end on every device: reserve, map, write, back up,
            unmap and release, map again at the same address, restore, verify, report
  help      this text

demo options:
  --backend host|cuda|auto   device backend (default host, the embedded default)
  --devices N                emulated devices on the host backend (default 2)
  --capacity BYTES           memory of each emulated device (default 1G)
  --size BYTES               bytes to exercise per device (default 256M)
  --chunk BYTES              physical chunk size (default 32M)
BYTES take K, M and G suffixes (binary).
)";

int demo(const std::vector<std::string>& args) {
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
    std::fprintf(stderr, "gpumem: unknown command '%s'\n\n%s", command.c_str(), usage);
    return 2;
  } catch (const std::invalid_argument& bad) {
    std::fprintf(stderr, "gpumem %s: %s\n", command.c_str(), bad.what());
    return 2;
  }
}
