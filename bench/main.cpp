// gpumem_bench: Google Benchmark over one device backend, picked with
// --backend=host|cuda|auto (default host). After the run it prints how the
// backend's copy bandwidth (and the engine's sleep + wake) compares to a plain memcpy
// measured in the same run, and how the engine's allocate + free time compares to a
// linear-scan best fit's.
//
// Exit status: 0, or 1 when the backend cannot be created, a flag is wrong, or a
// benchmark failed (skipped with an error), so scripts notice broken runs.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_backend.hpp"
#include "gpumem/cuda/backend_factory.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace {

namespace gc = gpumem::cuda;

std::unique_ptr<gc::device_backend> g_backend;

/// Takes --backend=KIND (or --backend KIND) out of argv, since Google Benchmark
/// rejects flags it does not know. Returns KIND, "host" when absent.
std::string take_backend_flag(int& argc, char** argv) {
  std::string kind = "host";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--backend=")) {
      kind = arg.substr(std::string_view("--backend=").size());
    } else if (arg == "--backend" && i + 1 < argc) {
      kind = argv[++i];
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return kind;
}

/// The value of --NAME=VALUE ("true" for a bare --NAME; the last one wins), read
/// without removing it: benchmark::Initialize parses and removes it later.
std::optional<std::string> peek_flag(int argc, char** argv, std::string_view name) {
  std::optional<std::string> value;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("--") || !arg.substr(2).starts_with(name))
      continue;
    arg.remove_prefix(2 + name.size());
    if (arg.empty())
      value = "true";
    else if (arg.front() == '=')
      value = std::string(arg.substr(1));
  }
  return value;
}

bool truthy(std::string_view value) {
  return !(value == "0" || value == "f" || value == "n" || value == "false" || value == "no" ||
           value == "off");
}

/// The console options Google Benchmark's own default reporter would use: a custom
/// display reporter does not get them from the library.
benchmark::ConsoleReporter::OutputOptions console_options(int argc, char** argv) {
  int options = benchmark::ConsoleReporter::OO_None;
  const std::string color = peek_flag(argc, argv, "benchmark_color").value_or("auto");
  const char* term = std::getenv("TERM");
  const bool color_terminal = isatty(STDOUT_FILENO) != 0 && term != nullptr &&
                              std::string_view(term) != "dumb";
  if (color == "auto" ? color_terminal : truthy(color))
    options |= benchmark::ConsoleReporter::OO_Color;
  if (truthy(peek_flag(argc, argv, "benchmark_counters_tabular").value_or("false")))
    options |= benchmark::ConsoleReporter::OO_Tabular;
  return static_cast<benchmark::ConsoleReporter::OutputOptions>(options);
}

/// The reporter --benchmark_format names (Initialize has already rejected others).
std::unique_ptr<benchmark::BenchmarkReporter> make_display_reporter(
  const std::string& format, benchmark::ConsoleReporter::OutputOptions options) {
  if (format == "json")
    return std::make_unique<benchmark::JSONReporter>();
  if (format == "csv") {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return std::make_unique<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
  }
  return std::make_unique<benchmark::ConsoleReporter>(options);
}

/// Passes every report on to the display reporter and keeps bytes_per_second and
/// items_per_second per benchmark and argument, for the ratio table printed after the
/// run. The file reporter (--benchmark_out) is the library's own and sees the same runs.
class ratio_reporter final : public benchmark::BenchmarkReporter {
public:
  explicit ratio_reporter(std::unique_ptr<benchmark::BenchmarkReporter> display)
    : display_(std::move(display)) {}

  bool ReportContext(const Context& context) override { return display_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs)
      record(run);
    display_->ReportRuns(runs);
  }
  void Finalize() override { display_->Finalize(); }

  int failures() const { return failures_; }

  /// "ratio HostBackup/Memcpy 64 MiB: 0.93" for every size both were measured at, then
  /// "ratio EngineAllocFree/LinearBestFitAllocFree time 10000: 0.250 (200 ns vs 800 ns)"
  /// (time per operation: below 1 the engine is faster) for every live-block count
  /// both ran at.
  void print_ratios(std::ostream& out) const {
    print_memcpy_ratios(out);
    print_time_ratio(out, "EngineAllocFree", "LinearBestFitAllocFree");
    print_time_ratio(out, "ActorAllocFree", "EngineAllocFreeDirect");
    print_time_ratio(out, "ActorAllocFreeTimed", "EngineAllocFreeDirect");
    print_time_ratio(out, "ActorAllocFreeTimed", "ActorAllocFree");
    // Per allocation (+ free): the batch's 64 against the direct engine's one.
    print_time_ratio(out, "ActorBatchAlloc", "EngineAllocFreeDirect", 0);
    // And against the same batch's work done on the engine directly.
    print_time_ratio(out, "ActorBatchAlloc", "EngineBatchDirect");
    // The clients from outside the actor system (argument: threads, or coroutines)
    // against an event-based actor's round trips and the engine called directly.
    print_time_ratio(out, "BlockingClientAllocFree", "BlockingClientAllocFreeCafPolling", 1);
    print_time_ratio(out, "BlockingClientAllocFree", "ActorAllocFree", 0);
    print_time_ratio(out, "BlockingClientAllocFree", "EngineAllocFreeDirect", 0);
    print_time_ratio(out, "AsioClientAllocFree", "ActorAllocFree", 0);
    print_time_ratio(out, "AsioClientAllocFree", "EngineAllocFreeDirect", 0);
  }

private:
  void print_memcpy_ratios(std::ostream& out) const {
    const auto baseline = rates_.find("BM_Memcpy");
    if (baseline == rates_.end())
      return;
    for (const auto& [bytes, memcpy_rate] : baseline->second) {
      for (const char* name :
           {"HostBackup", "HostRestore", "EngineSleepWake", "EngineSleepWake_copies"}) {
        const auto rates = rates_.find(std::string("BM_") + name);
        if (rates == rates_.end() || memcpy_rate <= 0)
          continue;
        const auto rate = rates->second.find(bytes);
        if (rate == rates->second.end())
          continue;
        out << "ratio " << name << "/Memcpy " << gpumem::format_bytes(bytes) << ": "
            << std::fixed << std::setprecision(2) << rate->second / memcpy_rate << '\n';
      }
    }
  }

  /// Time per item of BM_<name> over that of BM_<baseline>, from items_per_second.
  /// With `baseline_arg`, every argument of BM_<name> is compared with that one.
  void print_time_ratio(std::ostream& out, const char* name, const char* baseline,
                        std::optional<std::uint64_t> baseline_arg = std::nullopt) const {
    const auto ours = items_.find(std::string("BM_") + name);
    const auto theirs = items_.find(std::string("BM_") + baseline);
    if (ours == items_.end() || theirs == items_.end())
      return;
    for (const auto& [arg, rate] : ours->second) {
      const auto base = theirs->second.find(baseline_arg.value_or(arg));
      if (base == theirs->second.end() || rate <= 0 || base->second <= 0)
        continue;
      out << "ratio " << name << '/' << baseline << " time " << arg << ": " << std::fixed
          << std::setprecision(3) << base->second / rate << " (" << std::setprecision(0)
          << 1e9 / rate << " ns vs " << 1e9 / base->second << " ns)\n";
    }
  }

  void record(const Run& run) {
    if (run.error_occurred) {
      ++failures_;
      return;
    }
    // With repetitions, the mean stands for the size (it comes after the single runs).
    if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "mean")
      return;
    // A benchmark run from several threads (Threads(n)) is recorded by its count.
    const std::string args = !run.run_name.args.empty() ? run.run_name.args
                             : run.run_name.threads.starts_with("threads:")
                               ? run.run_name.threads.substr(8)
                               : std::string{};
    std::uint64_t arg = 0;
    const auto parsed = std::from_chars(args.data(), args.data() + args.size(), arg);
    // A benchmark without an argument is recorded as argument 0.
    if (!args.empty() && (parsed.ec != std::errc{} || parsed.ptr != args.data() + args.size()))
      return;
    if (const auto bytes = run.counters.find("bytes_per_second"); bytes != run.counters.end())
      rates_[run.run_name.function_name][arg] = bytes->second.value;
    // A sleep/wake's copies alone, beside the whole transition (which also releases
    // and recreates the physical memory).
    if (const auto copies = run.counters.find("copy_bytes_per_second");
        copies != run.counters.end())
      rates_[run.run_name.function_name + "_copies"][arg] = copies->second.value;
    if (const auto items = run.counters.find("items_per_second"); items != run.counters.end())
      items_[run.run_name.function_name][arg] = items->second.value;
  }

  std::unique_ptr<benchmark::BenchmarkReporter> display_;
  std::map<std::string, std::map<std::uint64_t, double>> rates_;  // bytes per second
  std::map<std::string, std::map<std::uint64_t, double>> items_;  // items per second
  int failures_ = 0;
};

/// One emulated device, big enough for the largest benchmark (1 GiB of device
/// memory at a time) with room to spare.
gc::host_backend_config bench_host_config() {
  gc::host_device_config device;
  device.capacity = 6 * gpumem::GiB;
  gc::host_backend_config config;
  config.devices = {device};
  return config;
}

} // namespace

gc::device_backend& bench_backend() {
  return *g_backend;
}

int main(int argc, char** argv) {
  const std::string kind = take_backend_flag(argc, argv);
  // Peeked before Initialize, which removes the flags it knows from argv.
  const std::string format = peek_flag(argc, argv, "benchmark_format").value_or("console");
  const auto options = console_options(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;

  // Our own lines go to stderr when stdout carries JSON or CSV, to keep it parseable.
  std::ostream& info = format == "console" ? std::cout : std::cerr;

  auto choice = gc::make_backend(kind, bench_host_config());
  if (!choice) {
    std::cerr << "gpumem_bench: cannot create the '" << kind
              << "' backend: " << choice.error().to_string() << '\n';
    return 1;
  }
  g_backend = std::move(choice->backend);
  info << "backend: " << choice->reason << std::endl;
  benchmark::AddCustomContext("gpumem_backend", std::string(g_backend->name()));
  benchmark::AddCustomContext("gpumem_backend_reason", choice->reason);

  ratio_reporter reporter(make_display_reporter(format, options));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  reporter.print_ratios(info);
  g_backend.reset();

  if (reporter.failures() > 0) {
    std::cerr << "gpumem_bench: " << reporter.failures() << " benchmark(s) failed\n";
    return 1;
  }
  return 0;
}
