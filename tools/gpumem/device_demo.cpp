#include "device_demo.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "gpumem/cuda/backend_factory.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "step_timing.hpp"

namespace gpumem::tool {

namespace {

using namespace gpumem::cuda;

/// One line of the closing report.
struct step_report {
  int device;
  std::string step;
  double seconds;
  std::size_t bytes;
};

std::uint64_t checksum(const std::byte* data, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= static_cast<std::uint64_t>(data[i]);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

void fill_pattern(std::byte* data, std::size_t size, std::uint64_t seed) {
  auto* words = reinterpret_cast<std::uint64_t*>(data);
  std::uint64_t x = seed | 1;
  for (std::size_t i = 0; i < size / sizeof(std::uint64_t); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    words[i] = x;
  }
}

/// Raised by `check` to end a device's run with a message; the demo then fails.
struct demo_failure {
  std::string what;
};

template <class T>
T check(result<T> r, const char* doing) {
  if (!r)
    throw demo_failure{std::string(doing) + ": " + r.error().to_string()};
  return std::move(r).value();
}

void check(status s, const char* doing) {
  if (!s)
    throw demo_failure{std::string(doing) + ": " + s.error().to_string()};
}

/// Starts one asynchronous copy per chunk so the copy engine never idles, then waits.
void copy_pipelined(device_backend& backend, int device, bool to_host, std::byte* host,
                    device_ptr base, std::size_t size, std::size_t piece) {
  std::vector<copy_handle> inflight;
  for (std::size_t offset = 0; offset < size; offset += piece) {
    auto n = std::min(piece, size - offset);
    inflight.push_back(
      to_host ? check(backend.copy_to_host_async(device, host + offset, base + offset, n),
                      "copy to host")
              : check(backend.copy_to_device_async(device, base + offset, host + offset, n),
                      "copy to device"));
  }
  for (auto& copy : inflight)
    check(copy->wait(), to_host ? "copy to host" : "copy to device");
}

/// Maps fresh chunks over [base, base + size) with access: the "wake" half.
std::vector<chunk_handle> map_chunks(device_backend& backend, int device, device_ptr base,
                                     std::size_t size, std::size_t chunk) {
  std::vector<chunk_handle> handles;
  for (std::size_t offset = 0; offset < size; offset += chunk) {
    handles.push_back(check(backend.create_chunk(device, chunk), "create chunk"));
    check(backend.map(base + offset, chunk, handles.back()), "map chunk");
  }
  check(backend.set_access(device, base, size), "set access");
  return handles;
}

/// Unmaps [base, base + size) and releases its chunks: the "sleep" half.
void release_chunks(device_backend& backend, device_ptr base, std::size_t size,
                    std::vector<chunk_handle>& handles) {
  check(backend.unmap(base, size), "unmap");
  for (auto handle : handles)
    check(backend.release_chunk(handle), "release chunk");
  handles.clear();
}

void run_device(device_backend& backend, int device, const device_demo_options& options,
                std::vector<step_report>& report) {
  auto props = check(backend.properties(device), "properties");
  auto chunk = round_up(options.chunk_size, props.granularity_minimum);
  auto size = round_up(options.bytes_per_device, chunk);
  auto total_before = check(backend.memory(device), "memory");
  auto timed = [&](const std::string& step, std::size_t bytes, auto&& body) {
    auto start = clock_type::now();
    body();
    double s = seconds_since(start);
    report.push_back({device, step, s, bytes});
    spdlog::info("device {}: {:<22} {:>10}  {:8.2f} ms  {:7.2f} GiB/s", device, step,
                 format_bytes(bytes), s * 1e3, gib_per_second(bytes, s));
  };

  device_ptr base = check(backend.reserve(device, size), "reserve");
  spdlog::info("device {}: reserved {} at {:#x}; chunks of {}", device, format_bytes(size), base,
               format_bytes(chunk));
  std::vector<chunk_handle> handles;
  timed("create+map", size, [&] { handles = map_chunks(backend, device, base, size, chunk); });

  auto source = check(backend.allocate_pinned(size), "allocate pinned source");
  auto backup = check(backend.allocate_pinned(size), "allocate pinned backup");
  fill_pattern(source.data(), size, 0x5eed + static_cast<std::uint64_t>(device));
  auto expected = checksum(source.data(), size);
  timed("write (host->device)", size,
        [&] { copy_pipelined(backend, device, false, source.data(), base, size, chunk); });
  timed("back up (device->host)", size,
        [&] { copy_pipelined(backend, device, true, backup.data(), base, size, chunk); });
  if (checksum(backup.data(), size) != expected)
    throw demo_failure{"the backup differs from what was written"};

  timed("unmap+release", size, [&] { release_chunks(backend, base, size, handles); });
  auto asleep = check(backend.memory(device), "memory");
  spdlog::info("device {}: released; {} free of {} (was {}), address range still reserved",
               device, format_bytes(asleep.free), format_bytes(asleep.total),
               format_bytes(total_before.free));

  timed("create+map again", size, [&] { handles = map_chunks(backend, device, base, size, chunk); });
  timed("restore (host->device)", size,
        [&] { copy_pipelined(backend, device, false, backup.data(), base, size, chunk); });
  std::memset(source.data(), 0, size);
  copy_pipelined(backend, device, true, source.data(), base, size, chunk);
  if (checksum(source.data(), size) != expected)
    throw demo_failure{"the bytes at " + std::to_string(base) + " differ after restore"};
  spdlog::info("device {}: verified {} byte for byte at the same address {:#x}", device,
               format_bytes(size), base);

  release_chunks(backend, base, size, handles);
  check(backend.free_reservation(base, size), "free reservation");
}

/// Plain memcpy between two host buffers of `size` bytes: the in-run baseline.
double memcpy_seconds(std::size_t size) {
  std::vector<std::byte> a(size, std::byte{1}), b(size, std::byte{2});
  std::memcpy(b.data(), a.data(), size);  // touch both once
  auto start = clock_type::now();
  std::memcpy(a.data(), b.data(), size);
  return seconds_since(start);
}

} // namespace

int run_device_demo(const device_demo_options& options) {
  host_backend_config host;
  host.devices.assign(static_cast<std::size_t>(options.host_devices),
                      host_device_config{options.host_capacity, 2 * MiB, 2 * MiB});
  auto choice = make_backend(options.backend, host);
  if (!choice) {
    spdlog::error("cannot start the {} backend: {}", options.backend, choice.error().to_string());
    return 1;
  }
  spdlog::info("backend: {}", choice->reason);
  auto& backend = *choice->backend;

  int failures = 0;
  std::vector<step_report> report;
  int count = check(backend.device_count(), "device count");
  for (int device = 0; device < count; ++device) {
    auto props = check(backend.properties(device), "properties");
    auto mem = check(backend.memory(device), "memory");
    spdlog::info("device {}: {} | {} total, {} free | VMM {} | granularity {} (recommended {})",
                 device, props.name, format_bytes(props.total_memory), format_bytes(mem.free),
                 props.vmm_supported ? "yes" : "no", format_bytes(props.granularity_minimum),
                 format_bytes(props.granularity_recommended));
  }
  for (int device = 0; device < count; ++device) {
    try {
      run_device(backend, device, options, report);
    } catch (const demo_failure& failure) {
      spdlog::error("device {}: FAILED: {}", device, failure.what);
      ++failures;
    }
  }

  double baseline = memcpy_seconds(options.bytes_per_device);
  double baseline_rate = gib_per_second(options.bytes_per_device, baseline);
  spdlog::info("report ({} step(s); baseline host memcpy {:.2f} GiB/s, measured now)",
               report.size(), baseline_rate);
  for (const auto& r : report) {
    double rate = gib_per_second(r.bytes, r.seconds);
    spdlog::info("  device {} {:<22} {:8.2f} ms {:7.2f} GiB/s  ({:.2f}x memcpy)", r.device, r.step,
                 r.seconds * 1e3, rate, baseline_rate > 0 ? rate / baseline_rate : 0.0);
  }
  if (failures > 0) {
    spdlog::error("demo FAILED on {} device(s)", failures);
    return 1;
  }
  spdlog::info("demo passed: every byte came back at the same address on {} device(s)", count);
  return 0;
}

} // namespace gpumem::tool
