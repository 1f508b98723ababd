#pragma once
// `gpumem replay`: runs an allocation trace against gpumem's engine (on a host
// backend with one emulated device) and against simulated baselines, measured the
// same way: peak physical bytes, peak live bytes, fragmentation, OOMs, time per op,
// and the physical memory each created and gave back on the way (churn). The engine
// runs on the trace's clock, so its cache decays as it would have in the traced run.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gpumem/core/allocation_log.hpp"
#include "gpumem/core/engine_config.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::replay {

/// Physical memory a policy created and gave back. gpumem counts its chunks, the
/// baselines their segments (what cudaMalloc and cudaFree would have made and freed).
struct churn_counts {
  std::size_t created = 0;
  std::size_t reused = 0;  // gpumem: cached chunks mapped again; baselines: allocations
                           // served from memory already held
  std::size_t released = 0;
  std::size_t bytes_created = 0;
};

/// What a trace is replayed against: the engine or a simulated allocator.
class replay_target {
public:
  virtual ~replay_target() = default;
  /// The trace's clock before each operation: seconds, from the entry's time.
  virtual void set_time(double) {}
  /// A handle for the new allocation; nullopt when out of memory (counted, not
  /// fatal); an error for anything else.
  virtual core::engine_result<std::optional<std::uint64_t>> allocate(std::size_t size,
                                                                     const std::string& tag) = 0;
  virtual core::engine_result<void> deallocate(std::uint64_t handle) = 0;
  /// Physical memory held now, in use or cached.
  virtual std::size_t physical_bytes() const = 0;
  virtual churn_counts churn() const = 0;
};

/// Where gpumem's time went: its backend's calls (on the host backend: memfd,
/// fallocate and populate; mmap and munmap) and the rest, the engine's own.
struct backend_time {
  double create_ms = 0;   // create_chunk
  double map_ms = 0;      // map and set_access
  double release_ms = 0;  // unmap and release_chunk
  double engine_ns_per_operation = 0;  // ns_per_operation less the backend's share
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
  churn_counts churn;
  double created_per_peak = 0;       // churn.bytes_created / peak physical: 1 is no churn
  std::optional<backend_time> backend;  // gpumem only: the baselines call no device
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
  core::engine_config engine;         // gpumem's settings (its cache policy)
};

/// gpumem's engine with options.engine, on a host backend with one emulated device of
/// options.capacity.
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

/// Two aligned text tables, one policy a line: the peaks, then the churn.
std::string format_table(const replay_report& report);
/// The same figures as JSON (bytes as integers, fragmentation as a fraction).
std::string to_json(const replay_report& report, int indent = 2);

} // namespace gpumem::replay
