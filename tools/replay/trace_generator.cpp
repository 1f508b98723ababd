#include "replay/trace_generator.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numbers>
#include <ostream>
#include <string>

namespace gpumem::replay {

namespace {

using core::engine_errc;
using core::engine_error;
using core::log_action;
using core::log_entry;

// The serving model's shape (a 7B-class layer in fp16); see the header for the story.
constexpr std::size_t min_prompt = 16, max_prompt = 2048;
constexpr std::size_t min_output = 8, max_output = 1024;
constexpr std::size_t max_step_prompt_tokens = 2048;
constexpr std::size_t layer_passes = 4;  // every layer repeats the same sizes; 4 show the rhythm
constexpr std::size_t hidden_per_token = 4096 * 2;
constexpr std::size_t qkv_per_token = 3 * 4096 * 2;
constexpr std::size_t mlp_per_token = 2 * 11008 * 2;  // gate and up projections
constexpr std::size_t logits_per_sequence = 32000 * 4;
constexpr std::size_t min_weight_tensor = 16 * MiB, max_weight_tensor = 256 * MiB;
constexpr double step_seconds = 0.025;
constexpr double arrival_pressure = 1.1;  // arrivals outpace service by 10%: a busy server

/// splitmix64 plus hand-written distributions: std's distributions differ between
/// standard libraries, and a trace must be the same bytes everywhere.
class random_source {
public:
  explicit random_source(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// In [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::size_t uniform(std::size_t lo, std::size_t hi) {
    return lo + static_cast<std::size_t>(next() % (hi - lo + 1));
  }
  /// Short values common, long ones rare, as prompt and output lengths are.
  std::size_t log_uniform(std::size_t lo, std::size_t hi) {
    double low = std::log(static_cast<double>(lo)), high = std::log(static_cast<double>(hi + 1));
    auto value = static_cast<std::size_t>(std::exp(low + unit() * (high - low)));
    return std::clamp(value, lo, hi);
  }
  double exponential(double mean) { return -std::log(1.0 - unit()) * mean; }

private:
  std::uint64_t state_;
};

/// One step's activation buffers, sized by the tokens and sequences in the batch.
struct activation_sizes {
  std::size_t metadata, hidden, qkv, mlp, logits;

  activation_sizes(std::size_t tokens, std::size_t sequences)
    : metadata(256 + tokens * 16), hidden(tokens * hidden_per_token),
      qkv(tokens * qkv_per_token), mlp(tokens * mlp_per_token),
      logits(sequences * logits_per_sequence) {}
  /// More than is ever live at once (attention output and MLP never overlap QKV fully).
  std::size_t bound() const { return metadata + 2 * hidden + qkv + mlp + logits; }
};

struct request {
  std::size_t prompt = 0;
  std::size_t output = 0;
  std::size_t produced = 0;
  std::size_t reserved = 0;                 // its whole KV cache, held against the budget
  std::vector<cuda::device_ptr> blocks;
};

/// Appends entries with synthetic pointers and step-relative times; tracks live bytes.
class trace_builder {
public:
  cuda::device_ptr allocate(std::size_t size, const char* tag) {
    auto pointer = static_cast<cuda::device_ptr>(next_id_++ * 0x1000);
    append(log_action::allocate, pointer, size, tag);
    live_ += size;
    peak_ = std::max(peak_, live_);
    return pointer;
  }
  void free(cuda::device_ptr pointer, std::size_t size, const char* tag) {
    append(log_action::free, pointer, size, tag);
    live_ -= size;
  }
  /// Operations within a step are a microsecond apart, after the step's start.
  void begin_step(std::size_t step) {
    step_start_ = static_cast<double>(step) * step_seconds;
    in_step_ = 0;
  }
  std::vector<log_entry>& entries() { return entries_; }
  std::size_t peak_live() const { return peak_; }

private:
  void append(log_action action, cuda::device_ptr pointer, std::size_t size, const char* tag) {
    log_entry entry;
    entry.thread = 1;
    entry.time = step_start_ + static_cast<double>(in_step_++) * 1e-6;
    entry.action = action;
    entry.pointer = pointer;
    entry.size = size;
    entry.tag = tag;
    entries_.push_back(std::move(entry));
  }

  std::vector<log_entry> entries_;
  std::uint64_t next_id_ = 1;
  std::size_t live_ = 0, peak_ = 0;
  double step_start_ = 0;
  std::size_t in_step_ = 0;
};

engine_error invalid(const std::string& what) {
  return engine_error(engine_errc::invalid_config, what);
}

std::size_t blocks_for(std::size_t tokens, std::size_t tokens_per_block) {
  return (tokens + tokens_per_block - 1) / tokens_per_block;
}

/// Mean of log_uniform(lo, hi), near enough to pace arrivals.
double log_uniform_mean(std::size_t lo, std::size_t hi) {
  return static_cast<double>(hi - lo) / std::log(static_cast<double>(hi) / static_cast<double>(lo));
}

/// The serving loop; options are valid and the worst request fits the KV budget.
class serving_simulation {
public:
  serving_simulation(const trace_options& options, std::size_t kv_budget)
    : options_(options), rng_(options.seed),
      tokens_per_block_(options.kv_block / options.kv_bytes_per_token), kv_budget_(kv_budget),
      mean_gap_(log_uniform_mean(min_output, max_output)
                / (static_cast<double>(options.max_concurrent) * arrival_pressure)) {}

  void load_weights() {
    for (std::size_t remaining = options_.model_bytes; remaining > 0;) {
      auto size = rng_.uniform(min_weight_tensor / (64 * KiB), max_weight_tensor / (64 * KiB))
                  * (64 * KiB);
      if (size >= remaining)
        size = remaining;
      else if (remaining - size < min_weight_tensor)  // no sliver tensor at the end
        size = remaining <= max_weight_tensor ? remaining : remaining - min_weight_tensor;
      trace_.allocate(size, "weights");
      remaining -= size;
    }
  }

  /// Runs steps until every request has finished; returns the number of steps.
  std::size_t serve() {
    double next_arrival = arrival_after(0);
    std::size_t step = 0;
    while (finished_ < options_.requests) {
      while (arrived_ < options_.requests && next_arrival <= static_cast<double>(step)) {
        waiting_.push_back(new_request());
        ++arrived_;
        next_arrival = arrival_after(next_arrival);
      }
      std::size_t decoding = running_.size();
      std::size_t prompt_tokens = admit();
      if (running_.empty()) {  // idle until the next arrival
        step = std::max(step + 1, static_cast<std::size_t>(std::ceil(next_arrival)));
        continue;
      }
      trace_.begin_step(step);
      run_step(decoding, prompt_tokens);
      finish_done();
      ++step;
    }
    return step;
  }

  trace_builder& trace() { return trace_; }

private:
  /// The next arrival after `step` (a fractional step). With a swing, arrivals are
  /// drawn at the highest rate and each kept with the probability of the rate at its
  /// time over the highest (thinning: exact for a rate that varies in time).
  double arrival_after(double step) {
    if (options_.arrival_swing == 0)
      return step + rng_.exponential(mean_gap_);
    const double peak = 1 + options_.arrival_swing;
    for (;;) {
      step += rng_.exponential(mean_gap_ / peak);
      double t = step * step_seconds;
      double phase = 2 * std::numbers::pi * t / options_.swing_period;
      double rate = 1 + options_.arrival_swing * std::sin(phase);
      if (rng_.unit() * peak < rate)
        return step;
    }
  }

  request new_request() {
    request r;
    r.prompt = rng_.log_uniform(min_prompt, max_prompt);
    r.output = rng_.log_uniform(min_output, max_output);
    r.reserved = blocks_for(r.prompt + r.output, tokens_per_block_) * options_.kv_block;
    return r;
  }

  /// First come, first served; the head of the queue waits for room, as in vLLM.
  std::size_t admit() {
    std::size_t prompt_tokens = 0;
    while (!waiting_.empty() && running_.size() < options_.max_concurrent) {
      const auto& next = waiting_.front();
      if (prompt_tokens + next.prompt > max_step_prompt_tokens
          || kv_reserved_ + next.reserved > kv_budget_)
        break;
      prompt_tokens += next.prompt;
      kv_reserved_ += next.reserved;
      running_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    return prompt_tokens;
  }

  void grow_kv(request& r, std::size_t tokens) {
    while (r.blocks.size() < blocks_for(tokens, tokens_per_block_))
      r.blocks.push_back(trace_.allocate(options_.kv_block, "kv_cache"));
  }

  /// Running requests [0, decoding) decode one token; the rest were just admitted and
  /// prefill their prompts (and produce their first token).
  void run_step(std::size_t decoding, std::size_t prompt_tokens) {
    const char* tag = "activations";
    activation_sizes sizes(prompt_tokens + decoding, running_.size());
    auto metadata = trace_.allocate(sizes.metadata, tag);
    auto hidden = trace_.allocate(sizes.hidden, tag);
    for (std::size_t i = decoding; i < running_.size(); ++i)
      grow_kv(running_[i], running_[i].prompt);
    for (std::size_t pass = 0; pass < layer_passes; ++pass) {
      auto qkv = trace_.allocate(sizes.qkv, tag);
      auto attention = trace_.allocate(sizes.hidden, tag);
      trace_.free(qkv, sizes.qkv, tag);
      auto mlp = trace_.allocate(sizes.mlp, tag);
      trace_.free(attention, sizes.hidden, tag);
      trace_.free(mlp, sizes.mlp, tag);
    }
    auto logits = trace_.allocate(sizes.logits, tag);
    for (auto& r : running_) {
      ++r.produced;
      grow_kv(r, r.prompt + r.produced);
    }
    trace_.free(logits, sizes.logits, tag);
    trace_.free(hidden, sizes.hidden, tag);
    trace_.free(metadata, sizes.metadata, tag);
  }

  void finish_done() {
    auto done = [](const request& r) { return r.produced >= r.output; };
    for (auto& r : running_) {
      if (!done(r))
        continue;
      for (auto block : r.blocks)
        trace_.free(block, options_.kv_block, "kv_cache");
      kv_reserved_ -= r.reserved;
      ++finished_;
    }
    running_.erase(std::remove_if(running_.begin(), running_.end(), done), running_.end());
  }

  const trace_options& options_;
  random_source rng_;
  trace_builder trace_;
  std::size_t tokens_per_block_;
  std::size_t kv_budget_;
  double mean_gap_;  // steps between arrivals
  std::deque<request> waiting_;
  std::vector<request> running_;
  std::size_t kv_reserved_ = 0;
  std::size_t arrived_ = 0, finished_ = 0;
};

} // namespace

core::engine_result<generated_trace> generate_trace(const trace_options& options) {
  if (options.requests == 0)
    return invalid("requests must be at least 1");
  if (options.max_concurrent == 0)
    return invalid("max concurrent requests must be at least 1");
  if (options.model_bytes < 1 * MiB)
    return invalid("the model must have at least 1 MiB of weights");
  if (!(options.arrival_swing >= 0 && options.arrival_swing < 1))
    return invalid("the arrival swing must be from 0 to below 1");
  if (!(options.swing_period > 0))
    return invalid("the swing period must be positive");
  if (options.kv_bytes_per_token == 0 || options.kv_block < options.kv_bytes_per_token)
    return invalid("a KV block (" + format_bytes(options.kv_block) + ") must hold at least one "
                   "token (" + format_bytes(options.kv_bytes_per_token) + ")");

  // 10% of capacity stays free for the allocator's own rounding and caching.
  std::size_t usable = options.capacity / 10 * 9;
  std::size_t activations =
    activation_sizes(max_step_prompt_tokens + options.max_concurrent, options.max_concurrent)
      .bound();
  std::size_t worst_request =
    blocks_for(max_prompt + max_output, options.kv_block / options.kv_bytes_per_token)
    * options.kv_block;
  if (options.model_bytes + activations + worst_request > usable)
    return invalid("the weights (" + format_bytes(options.model_bytes) + "), the largest step's "
                   "activations (" + format_bytes(activations) + ") and one request's KV cache ("
                   + format_bytes(worst_request) + ") do not fit in 90% of the capacity ("
                   + format_bytes(options.capacity) + ")");

  serving_simulation simulation(options, usable - options.model_bytes - activations);
  simulation.load_weights();
  generated_trace result;
  result.steps = simulation.serve();
  result.weight_bytes = options.model_bytes;
  result.peak_live_bytes = simulation.trace().peak_live();
  result.entries = std::move(simulation.trace().entries());
  return result;
}

void write_trace(std::ostream& out, const std::vector<core::log_entry>& entries) {
  core::write_log_header(out);
  for (const auto& e : entries)
    core::write_log_entry(out, e);
}

} // namespace gpumem::replay
