// Fuzzes the runtime's configuration reader: a TOML file as `gpumem --config-file`
// reads it (gpumem_config::parse_command_line, then to_runtime_config). The input is
// the file, kept in a memfd so that the reader opens it by path as it opens any file.
// Property: a configuration that is accepted, written back (config_file_text, what
// --dump-config prints), is accepted again as the same configuration; a refusal has a
// message that starts with its key. Fractions are also compared to 1e-12.

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "gpumem/actors/runtime_config.hpp"
#include "property.hpp"

using namespace gpumem::actors;
using gpumem::fuzz::require;

namespace {

/// An in-memory file, reachable by path (/proc/self/fd/N).
class memory_file {
public:
  memory_file() : fd_(memfd_create("gpumem.conf", 0)) { require(fd_ >= 0, "memfd_create works"); }

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

  void write(std::string_view text) {
    require(ftruncate(fd_, 0) == 0, "the memfd truncates");
    const auto n = pwrite(fd_, text.data(), text.size(), 0);
    require(n == static_cast<ssize_t>(text.size()), "the memfd takes the whole text");
  }

private:
  int fd_;
};

config_result<runtime_config> read(memory_file& file, std::string_view text) {
  file.write(text);
  gpumem_config cfg;
  auto parsed = cfg.parse_command_line(std::vector<std::string>{"--config-file=" + file.path()});
  if (!parsed)
    return parsed.error();
  require(*parsed == gpumem_config::parse_outcome::run, "no help text without --help");
  return cfg.to_runtime_config();
}

bool close(double a, double b) { return std::fabs(a - b) <= 1e-12; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static memory_file file;
  auto first = read(file, std::string_view(reinterpret_cast<const char*>(data), size));
  if (!first) {
    const auto& e = first.error();
    require(!e.message.empty(), "a refusal says why");
    require(e.key.empty() || gpumem::fuzz::starts_with(e.message, e.key + ":"),
            "a refusal starts with its key", e.key + "\n" + e.message);
    return 0;
  }
  const std::string written = config_file_text(*first);
  auto second = read(file, written);
  require(second.ok(), "what the reader accepted, written back, is accepted again",
          second ? std::string() : second.error().message + "\n" + written);
  require(config_file_text(*second) == written,
          "the configuration read back is the same configuration",
          written + "\n" + config_file_text(*second));
  const auto& a = first->pressure;
  const auto& b = second->pressure;
  require(close(a.warning, b.warning) && close(a.critical, b.critical)
            && close(a.hysteresis, b.hysteresis),
          "the fractions read back are the same fractions", written + "\n" + config_file_text(*second));
  return 0;
}
