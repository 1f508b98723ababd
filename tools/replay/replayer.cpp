#include "replay/replayer.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "replay/baseline_policies.hpp"
#include "replay/timed_backend.hpp"

namespace gpumem::replay {

namespace {

using core::engine_errc;
using core::log_action;
using clock_type = std::chrono::steady_clock;

/// The engine as a replay target: regions by id, OOM as nullopt, on the trace's clock.
class engine_target final : public replay_target {
public:
  engine_target(core::engine& engine, const timed_backend& backend)
    : engine_(engine), backend_(backend) {
    engine_.set_clock([this] { return now_ns_; });
  }
  ~engine_target() override { engine_.set_clock(nullptr); }

  void set_time(double seconds) override {
    // Never backwards: an RMM log's wall-clock times wrap at midnight.
    if (seconds > 0)
      now_ns_ = std::max(now_ns_, static_cast<std::uint64_t>(seconds * 1e9));
  }
  core::engine_result<std::optional<std::uint64_t>> allocate(std::size_t size,
                                                             const std::string& tag) override {
    core::allocation_request request;
    request.size = size;
    request.tag = tag;
    auto region = engine_.allocate(request);
    if (region)
      return std::optional<std::uint64_t>{region->id};
    auto code = region.error().code();
    if (code == engine_errc::out_of_memory || code == engine_errc::too_large)
      return std::optional<std::uint64_t>{};
    return region.error();
  }
  core::engine_result<void> deallocate(std::uint64_t handle) override {
    return engine_.deallocate(handle);
  }
  std::size_t physical_bytes() const override { return engine_.physical_bytes(); }
  churn_counts churn() const override {
    const auto& costs = backend_.costs();
    return {costs.chunks_created, static_cast<std::size_t>(engine_.statistics().chunks_reused),
            costs.chunks_released, costs.bytes_created};
  }

private:
  core::engine& engine_;
  const timed_backend& backend_;
  std::uint64_t now_ns_ = 0;
};

/// A live allocation of the trace, as the target knows it.
struct live_allocation {
  std::uint64_t handle;
  std::size_t size;
};

std::string percent(double fraction) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", fraction * 100.0);
  return text;
}

} // namespace

core::engine_result<policy_result> replay_trace(const std::vector<core::log_entry>& trace,
                                                replay_target& target, std::string policy) {
  policy_result result;
  result.policy = std::move(policy);
  std::unordered_map<cuda::device_ptr, live_allocation> live;
  std::unordered_set<cuda::device_ptr> failed;  // allocations that ran out of memory
  std::size_t live_bytes = 0;
  std::chrono::nanoseconds busy{0};

  for (std::size_t i = 0; i < trace.size(); ++i) {
    const auto& entry = trace[i];
    auto where = [&] { return " (trace entry " + std::to_string(i + 1) + ")"; };
    target.set_time(entry.time);
    if (entry.action == log_action::allocate) {
      if (entry.size == 0 || live.count(entry.pointer) != 0) {
        ++result.skipped;
        continue;
      }
      auto start = clock_type::now();
      auto handle = target.allocate(entry.size, entry.tag);
      busy += clock_type::now() - start;
      ++result.operations;
      if (!handle)
        return core::engine_error(handle.error().code(), handle.error().message() + where());
      if (!handle->has_value()) {
        ++result.ooms;
        failed.insert(entry.pointer);
        continue;
      }
      failed.erase(entry.pointer);
      live.emplace(entry.pointer, live_allocation{**handle, entry.size});
      live_bytes += entry.size;
      result.peak_live_bytes = std::max(result.peak_live_bytes, live_bytes);
    } else if (entry.action == log_action::free) {
      auto it = live.find(entry.pointer);
      if (it == live.end()) {
        if (failed.erase(entry.pointer) == 0)
          ++result.skipped;
        continue;
      }
      auto start = clock_type::now();
      auto freed = target.deallocate(it->second.handle);
      busy += clock_type::now() - start;
      ++result.operations;
      if (!freed)
        return core::engine_error(freed.error().code(), freed.error().message() + where());
      live_bytes -= it->second.size;
      live.erase(it);
    } else {
      ++result.skipped;  // a failure the traced program saw; nothing to replay
      continue;
    }
    result.peak_physical_bytes = std::max(result.peak_physical_bytes, target.physical_bytes());
  }
  if (result.peak_physical_bytes > 0)
    result.fragmentation = 1.0 - static_cast<double>(result.peak_live_bytes)
                                   / static_cast<double>(result.peak_physical_bytes);
  if (result.operations > 0)
    result.ns_per_operation =
      static_cast<double>(busy.count()) / static_cast<double>(result.operations);
  result.churn = target.churn();
  if (result.peak_physical_bytes > 0)
    result.created_per_peak = static_cast<double>(result.churn.bytes_created)
                              / static_cast<double>(result.peak_physical_bytes);
  return result;
}

core::engine_result<policy_result> replay_on_engine(const std::vector<core::log_entry>& trace,
                                                    const replay_options& options) {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{options.capacity, options.granularity,
                                             options.granularity}};
  cuda::host_backend host(config);
  timed_backend backend(host);
  auto engine = core::engine::create(backend, options.engine);
  if (!engine)
    return engine.error();
  engine_target target(**engine, backend);
  auto result = replay_trace(trace, target, "gpumem");
  if (!result)
    return result;
  const auto& costs = backend.costs();
  auto ms = [](std::chrono::nanoseconds t) { return static_cast<double>(t.count()) / 1e6; };
  backend_time time{ms(costs.create_time), ms(costs.map_time), ms(costs.release_time), 0};
  if (result->operations > 0)
    time.engine_ns_per_operation =
      result->ns_per_operation - static_cast<double>(costs.total_time().count())
                                   / static_cast<double>(result->operations);
  result->backend = time;
  return result;
}

core::engine_result<replay_report> replay_all(const std::vector<core::log_entry>& trace,
                                              const replay_options& options) {
  replay_report report;
  report.capacity = options.capacity;
  report.entries = trace.size();
  auto gpumem = replay_on_engine(trace, options);
  if (!gpumem)
    return gpumem.error();
  report.policies.push_back(std::move(*gpumem));

  vllm_style_policy vllm(options.capacity, options.granularity);
  pytorch_caching_policy pytorch(options.capacity);
  for (auto [target, name] : {std::pair<replay_target*, const char*>{&vllm, "vllm-style"},
                              {&pytorch, "pytorch-caching"}}) {
    auto result = replay_trace(trace, *target, name);
    if (!result)
      return result.error();
    report.policies.push_back(std::move(*result));
  }
  return report;
}

std::string format_table(const replay_report& report) {
  std::string text = "replay of " + std::to_string(report.entries) + " entries on a "
                     + format_bytes(report.capacity) + " device\n";
  char line[240];
  std::snprintf(line, sizeof line, "%-16s %14s %14s %14s %6s %12s %10s\n", "policy",
                "peak physical", "peak live", "fragmentation", "OOMs", "operations", "ns/op");
  text += line;
  for (const auto& p : report.policies) {
    std::snprintf(line, sizeof line, "%-16s %14s %14s %14s %6zu %12zu %10.1f\n",
                  p.policy.c_str(), format_bytes(p.peak_physical_bytes).c_str(),
                  format_bytes(p.peak_live_bytes).c_str(), percent(p.fragmentation).c_str(),
                  p.ooms, p.operations, p.ns_per_operation);
    text += line;
  }
  text += "\nphysical memory created and released (gpumem: chunks and its backend's time; "
          "baselines: segments, simulated)\n";
  std::snprintf(line, sizeof line, "%-16s %12s %8s %9s %9s %9s %10s %10s %10s %10s\n", "policy",
                "created", "/peak", "made", "reused", "released", "create ms", "map ms",
                "release ms", "engine ns/op");
  text += line;
  for (const auto& p : report.policies) {
    auto cell = [&](double ms) {
      char value[32];
      std::snprintf(value, sizeof value, "%.1f", ms);
      return p.backend ? std::string(value) : std::string("-");
    };
    std::snprintf(line, sizeof line, "%-16s %12s %7.2fx %9zu %9zu %9zu %10s %10s %10s %12s\n",
                  p.policy.c_str(), format_bytes(p.churn.bytes_created).c_str(),
                  p.created_per_peak, p.churn.created, p.churn.reused, p.churn.released,
                  cell(p.backend ? p.backend->create_ms : 0).c_str(),
                  cell(p.backend ? p.backend->map_ms : 0).c_str(),
                  cell(p.backend ? p.backend->release_ms : 0).c_str(),
                  cell(p.backend ? p.backend->engine_ns_per_operation : 0).c_str());
    text += line;
  }
  return text;
}

std::string to_json(const replay_report& report, int indent) {
  nlohmann::json policies = nlohmann::json::array();
  for (const auto& p : report.policies)
    policies.push_back({{"policy", p.policy},
                        {"peak_physical_bytes", p.peak_physical_bytes},
                        {"peak_live_bytes", p.peak_live_bytes},
                        {"fragmentation", p.fragmentation},
                        {"ooms", p.ooms},
                        {"operations", p.operations},
                        {"ns_per_operation", p.ns_per_operation},
                        {"skipped", p.skipped},
                        {"created_bytes", p.churn.bytes_created},
                        {"created_per_peak", p.created_per_peak},
                        {"chunks_created", p.churn.created},
                        {"chunks_reused", p.churn.reused},
                        {"chunks_released", p.churn.released}});
  for (std::size_t i = 0; i < report.policies.size(); ++i)
    if (const auto& time = report.policies[i].backend)
      policies[i]["backend"] = {{"create_ms", time->create_ms},
                                {"map_ms", time->map_ms},
                                {"release_ms", time->release_ms},
                                {"engine_ns_per_operation", time->engine_ns_per_operation}};
  nlohmann::json document = {{"capacity_bytes", report.capacity},
                             {"entries", report.entries},
                             {"policies", std::move(policies)}};
  return document.dump(indent);
}

} // namespace gpumem::replay
