// Fuzzes read_allocation_log (RMM's CSV with a Tag column, or RMM's own), which reads
// logs from other programs for `gpumem replay`. Property: a log it accepts, written
// back with write_log_header and write_log_entry, reads back as the same entries (the
// time to the microsecond the writer keeps) and writes the same text again; a log it
// refuses gets invalid_config naming the line.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "gpumem/core/allocation_log.hpp"
#include "property.hpp"

using namespace gpumem::core;
using gpumem::fuzz::require;

namespace {

std::string write(const std::vector<log_entry>& entries) {
  std::ostringstream out;
  write_log_header(out);
  for (const auto& e : entries)
    write_log_entry(out, e);
  return out.str();
}

engine_result<std::vector<log_entry>> read(const std::string& text) {
  std::istringstream in(text);
  return read_allocation_log(in);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto first = read(std::string(reinterpret_cast<const char*>(data), size));
  if (!first) {
    require(first.error().code() == engine_errc::invalid_config, "a refusal is invalid_config",
            first.error().to_string());
    require(gpumem::fuzz::starts_with(first.error().message(), "allocation log line "),
            "a refusal names the line", first.error().message());
    return 0;
  }
  const std::string written = write(*first);
  auto second = read(written);
  require(second.ok(), "what the reader accepted, written back, is accepted again",
          second ? std::string() : second.error().message() + "\n" + written);
  require(second->size() == first->size(), "as many entries", written);
  for (std::size_t i = 0; i < first->size(); ++i) {
    const auto& a = (*first)[i];
    const auto& b = (*second)[i];
    require(a.thread == b.thread && a.action == b.action && a.pointer == b.pointer
              && a.size == b.size && a.stream == b.stream && a.tag == b.tag,
            "each entry reads back the same", written);
    // The writer keeps microseconds (%.6f): half of one, plus the double's own rounding.
    require(std::fabs(a.time - b.time) <= 5e-7 + std::fabs(a.time) * 1e-15,
            "each time reads back to the microsecond", written);
  }
  require(write(*second) == written, "the entries read back write the same text", written);
  return 0;
}
