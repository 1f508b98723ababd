#pragma once
// `gpumem replay`: runs an allocation trace against gpumem's engine (on a host
// backend with one emulated device) and against simulated baselines, measured the
// same way: peak physical bytes, peak live bytes, fragmentation, OOMs, time per op.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gpumem/core/allocation_log.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::replay {

/// What a trace is replayed against: the engine or a simulated allocator.
class replay_target {
public:
  virtual ~replay_target() = default;
  /// A handle for the new allocation; nullopt when out of memory (counted, not
  /// fatal); an error for anything else.
  virtual core::engine_result<std::optional<std::uint64_t>> allocate(std::size_t size,
                                                                     const std::string& tag) = 0;
  virtual core::engine_result<void> deallocate(std::uint64_t handle) = 0;
  /// Physical memory held now, in use or cached.
  virtual std::size_t physical_bytes() const = 0;
};

struct policy_result {
  std::string policy;
  std::size_t peak_physical_bytes = 0;
  std::size_t peak_live_bytes = 0;   // requested bytes of live allocations
  double fragmentation = 0;          // 1 - peak live / peak physical
  std::size_t ooms = 0;
  std::size_t operations = 0;        // allocations (OOMs included) and frees replayed
  double ns_per_operation = 0;       // steady_clock around each call
  std::size_t skipped = 0;           // entries not replayed; see replay_trace
};

/// Replays `trace` in order, mapping its pointers to the target's handles. Skipped
/// (not errors): "allocate failure" entries, zero-size allocations, allocations of a
/// pointer already live, and frees of pointers never allocated. Frees of allocations
/// that ran out of memory are dropped silently. Other target errors end the replay.
core::engine_result<policy_result> replay_trace(const std::vector<core::log_entry>& trace,
                                                replay_target& target, std::string policy);

struct replay_options {
  std::size_t capacity = 4 * GiB;     // the emulated device, and the baselines' limit
  std::size_t granularity = 2 * MiB;  // the device's (and vLLM-style rounding)
};

/// gpumem's engine with its default configuration, on a host backend with one
/// emulated device of options.capacity.
core::engine_result<policy_result> replay_on_engine(const std::vector<core::log_entry>& trace,
                                                    const replay_options& options);

struct replay_report {
  std::size_t capacity = 0;
  std::size_t entries = 0;
  std::vector<policy_result> policies;  // gpumem, vllm-style, pytorch-caching
};

/// gpumem, then the vLLM-style and PyTorch-caching baselines, on the same trace.
core::engine_result<replay_report> replay_all(const std::vector<core::log_entry>& trace,
                                              const replay_options& options);

/// An aligned text table, one policy a line.
std::string format_table(const replay_report& report);
/// The same figures as JSON (bytes as integers, fragmentation as a fraction).
std::string to_json(const replay_report& report, int indent = 2);

} // namespace gpumem::replay
