// Fuzzes the runtime's configuration reader: an INI file as `gpumem --config-file`
// reads it (gpumem_config::parse_command_line, then to_runtime_config). The input is
// the file, kept in a memfd so that the reader opens it by path as it opens any file.
// Property: a configuration that is accepted, written back as INI, is accepted again
// as the same configuration; a refusal has a message that starts with its key.
// Fractions are compared to 1e-12: CAF's INI number parser does not round correctly.

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

// -- writing a runtime_config as INI -------------------------------------------------

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + '"';
}

std::string list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items)
    out += (out.size() > 1 ? ", " : "") + quoted(item);
  return out + "]";
}

std::string bytes(std::size_t n) { return quoted(std::to_string(n)); }

std::string fraction(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

const char* level_name(spdlog::level::level_enum level) {
  constexpr std::array names{"trace", "debug", "info", "warn", "err", "critical", "off"};
  return names.at(static_cast<std::size_t>(level));
}

/// Every field of `c` as the INI file that sets it; fractions only where asked.
std::string write_ini(const runtime_config& c, bool with_fractions) {
  std::string ini = "[gpumem]\n";
  ini += "backend = " + quoted(to_string(c.backend)) + "\n";
  ini += "while-asleep = " + quoted(to_string(c.while_asleep)) + "\n";
  ini += "request-timeout-ms = " + std::to_string(c.request_timeout.count()) + "\n";
  ini += "log-level = " + quoted(level_name(c.log_level)) + "\n";
  ini += "[gpumem.host]\n";
  std::vector<std::string> capacities;
  for (auto n : c.host.capacities)
    capacities.push_back(std::to_string(n));
  ini += "capacities = " + list(capacities) + "\n";
  ini += "granularity = " + bytes(c.host.granularity) + "\n";
  const auto& e = c.engine;
  ini += "[gpumem.engine]\n";
  ini += "arena-size = " + bytes(e.arena_size) + "\n";
  ini += "small-chunk = " + bytes(e.small_chunk) + "\n";
  ini += "large-chunk = " + bytes(e.large_chunk) + "\n";
  ini += "small-segment = " + bytes(e.small_segment) + "\n";
  ini += "small-threshold = " + bytes(e.small_threshold) + "\n";
  ini += "default-alignment = " + bytes(e.default_alignment) + "\n";
  ini += "cache-limit = " + bytes(e.cache_limit) + "\n";
  ini += "wake-margin = " + bytes(e.wake_margin) + "\n";
  ini += "copy-piece = " + bytes(e.copy_piece) + "\n";
  ini += "copies-in-flight = " + std::to_string(e.copies_in_flight) + "\n";
  ini += "packed-tags = " + list(e.packed_tags) + "\n";
  ini += "default-strategy = " + quoted(gpumem::core::to_string(c.default_strategy)) + "\n";
  std::vector<std::string> entries;
  for (const auto& [tag, how] : c.tag_strategies)
    entries.push_back(tag + "=" + gpumem::core::to_string(how));
  ini += "tag-strategies = " + list(entries) + "\n";
  ini += "[gpumem.balancer]\n";
  ini += "routing = " + quoted(to_string(c.routing)) + "\n";
  ini += "transition-timeout-ms = " + std::to_string(c.transition_timeout.count()) + "\n";
  ini += "refresh-interval-ms = " + std::to_string(c.refresh_interval.count()) + "\n";
  const auto& p = c.pressure;
  ini += "[gpumem.pressure]\n";
  ini += "period-ms = " + std::to_string(p.period.count()) + "\n";
  if (with_fractions) {
    ini += "warning = " + fraction(p.warning) + "\n";
    ini += "critical = " + fraction(p.critical) + "\n";
    ini += "hysteresis = " + fraction(p.hysteresis) + "\n";
  }
  ini += std::string("trim-at-warning = ") + (p.trim_at_warning ? "true" : "false") + "\n";
  ini += std::string("offload-at-critical = ") + (p.offload_at_critical ? "true" : "false") + "\n";
  ini += "offloadable-tags = " + list(p.offloadable_tags) + "\n";
  ini += std::string("wake-on-normal = ") + (p.wake_on_normal ? "true" : "false") + "\n";
  return ini;
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
  const std::string written = write_ini(*first, true);
  auto second = read(file, written);
  require(second.ok(), "what the reader accepted, written back, is accepted again",
          second ? std::string() : second.error().message + "\n" + written);
  require(write_ini(*second, false) == write_ini(*first, false),
          "the configuration read back is the same configuration",
          written + "\n" + write_ini(*second, true));
  const auto& a = first->pressure;
  const auto& b = second->pressure;
  require(close(a.warning, b.warning) && close(a.critical, b.critical)
            && close(a.hysteresis, b.hysteresis),
          "the fractions read back are the same fractions", written + "\n" + write_ini(*second, true));
  return 0;
}
