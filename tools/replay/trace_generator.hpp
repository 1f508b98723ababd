#pragma once
// `gpumem trace-gen`: a seeded, reproducible allocation trace of an LLM server.
//
// The shape, in order of events:
//  1. Weights: tensors of 16 to 256 MiB (tag "weights") until model_bytes is reached,
//     allocated first and never freed.
//  2. Requests arrive at random (exponential gaps, so Poisson arrivals) at a rate
//     that keeps the server a little over-subscribed. Prompt lengths are log-uniform
//     in [16, 2048] tokens and output lengths log-uniform in [8, 1024] tokens.
//     Bursty serving: the rate swings around that mean as a sine of the trace time,
//     so the server alternates between a queue it cannot drain and idle slots, and
//     the KV cache's live bytes rise and fall with it (arrival_swing).
//  3. The server runs in steps (one decode iteration, 25 ms of trace time). It admits
//     waiting requests first come first served while fewer than max_concurrent run,
//     the step's prompt tokens stay within 2048, and the request's whole KV cache
//     (prompt plus output) fits the KV budget: 90% of `capacity`, less the weights
//     and the largest step's activations. So live bytes never exceed 90% of capacity.
//  4. Each step allocates its activations (tag "activations": token metadata, hidden
//     states, then per layer pass the QKV, attention output and MLP buffers, then
//     the logits; from hundreds of bytes to tens of MiB, depending on the step's
//     tokens) and frees them by the step's end. Meanwhile a newly admitted request
//     allocates KV blocks (tag "kv_cache", kv_block bytes each) for its prompt, and
//     every running request a new block whenever its tokens cross a block boundary.
//  5. A request that has produced its output frees all its blocks.
//
// Pointers are synthetic ids (0x1000, 0x2000, ...; never reused), which replay maps
// to what it allocates. Same options, same seed: the same bytes.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <vector>

#include "gpumem/core/allocation_log.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::replay {

struct trace_options {
  std::uint64_t seed = 1;
  std::size_t requests = 200;
  std::size_t max_concurrent = 16;
  std::size_t model_bytes = 1 * GiB;        // the weights, all told
  std::size_t kv_block = 2 * MiB;           // one KV-cache allocation
  std::size_t kv_bytes_per_token = 64 * KiB;
  std::size_t capacity = 4 * GiB;           // device memory the trace must fit in
  /// The arrival rate is the mean times 1 + arrival_swing * sin(2 pi t / swing_period),
  /// t in seconds of trace time; 0 keeps it steady. From 0 to below 1.
  double arrival_swing = 0;
  double swing_period = 30;                 // seconds of trace time
};

/// The swing of bursty serving (trace-gen --bursty).
inline constexpr double bursty_swing = 0.9;

/// A trace and what it asks of a device.
struct generated_trace {
  std::vector<core::log_entry> entries;
  std::size_t steps = 0;
  std::size_t weight_bytes = 0;
  std::size_t peak_live_bytes = 0;
};

/// Options that cannot make a trace (zero requests, a model that leaves no room for
/// one request's KV cache in the capacity, ...) are invalid_config.
core::engine_result<generated_trace> generate_trace(const trace_options& options);

/// Writes entries in the allocation log's CSV format (header first), so
/// core::read_allocation_log reads them back unchanged.
void write_trace(std::ostream& out, const std::vector<core::log_entry>& entries);

} // namespace gpumem::replay
