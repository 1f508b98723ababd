#pragma once
// The allocation log in RAPIDS RMM's CSV format, with the tag as an extra last column:
//   Thread,Time,Action,Pointer,Size,Stream,Tag
// Action is "allocate", "free" or "allocate failure"; Time is seconds since the log
// began; Pointer is hexadecimal. `gpumem replay` reads it back.

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "gpumem/core/engine_error.hpp"
#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::core {

enum class log_action { allocate, free, allocate_failure };

struct log_entry {
  std::uint64_t thread = 0;
  double time = 0;            // seconds
  log_action action = log_action::allocate;
  cuda::device_ptr pointer = 0;
  std::size_t size = 0;
  std::uint64_t stream = 0;
  std::string tag;
};

class allocation_log {
public:
  /// Writes the header now and one line per record(); `out` must outlive the log.
  explicit allocation_log(std::ostream& out);
  void record(log_action action, cuda::device_ptr pointer, std::size_t size,
              std::string_view tag);

private:
  std::ostream& out_;
  std::chrono::steady_clock::time_point start_;
};

const char* to_string(log_action action) noexcept;

/// The log's header line, and one entry as a line (the tag quoted where it needs it):
/// what allocation_log writes, for anything else that writes a log (trace-gen).
void write_log_header(std::ostream& out);
void write_log_entry(std::ostream& out, const log_entry& entry);

/// Parses a whole log. Errors name the line and what was wrong with it.
engine_result<std::vector<log_entry>> read_allocation_log(std::istream& in);

} // namespace gpumem::core
