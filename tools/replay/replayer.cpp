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

namespace gpumem::replay {

namespace {

using core::engine_errc;
using core::log_action;
using clock_type = std::chrono::steady_clock;

/// The engine as a replay target: regions by id, OOM as nullopt.
class engine_target final : public replay_target {
public:
  explicit engine_target(core::engine& engine) : engine_(engine) {}

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

private:
  core::engine& engine_;
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
  return result;
}

core::engine_result<policy_result> replay_on_engine(const std::vector<core::log_entry>& trace,
                                                    const replay_options& options) {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{options.capacity, options.granularity,
                                             options.granularity}};
  cuda::host_backend backend(config);
  auto engine = core::engine::create(backend);
  if (!engine)
    return engine.error();
  engine_target target(**engine);
  return replay_trace(trace, target, "gpumem");
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
  char line[200];
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
                        {"skipped", p.skipped}});
  nlohmann::json document = {{"capacity_bytes", report.capacity},
                             {"entries", report.entries},
                             {"policies", std::move(policies)}};
  return document.dump(indent);
}

} // namespace gpumem::replay
