// The C interface (libgpumem.so): every function before a start, with bad arguments,
// and at work; start from options, from a file, and attached to a C++ host's runtime.
// The process has one runtime: each test case stops what it started.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "clients/client_fixture.hpp"
#include "gpumem.h"
#include "gpumem/client/blocking_client.hpp"

namespace {

const char* host_options =
  "--gpumem.backend=host --gpumem.host.devices=2 --gpumem.host.capacity=256M "
  "--gpumem.log-level=warn";

std::string last_error() {
  return gpumem_last_error();
}

/// Stops the runtime at the end of a test case, whatever happened in it.
struct stop_at_exit {
  ~stop_at_exit() {
    if (gpumem_is_started())
      (void)gpumem_stop();
  }
};

} // namespace

TEST_CASE("C ABI: nothing works before a start, and says so", "[c_abi][errors]") {
  REQUIRE(gpumem_is_started() == 0);
  void* p = nullptr;
  int count = 0;
  int sleeping = 0;
  char* json = nullptr;
  CHECK(gpumem_malloc(4096, -1, nullptr, &p) == GPUMEM_NOT_STARTED);
  CHECK(last_error().find("gpumem_malloc") != std::string::npos);
  CHECK(p == nullptr);
  int x = 0;
  CHECK(gpumem_free(&x) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_sleep(1, nullptr, 0) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_wake_up(nullptr, 0) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_is_sleeping(nullptr, 0, &sleeping) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_statistics_json(&json) == GPUMEM_NOT_STARTED);
  CHECK(json == nullptr);
  CHECK(gpumem_snapshot_json(&json) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_device_count(&count) == GPUMEM_NOT_STARTED);
  CHECK(gpumem_stop() == GPUMEM_NOT_STARTED);
  CHECK(gpumem_torch_malloc(4096, 0, nullptr) == nullptr);
  CHECK(last_error().find("gpumem_torch_malloc") != std::string::npos);
  gpumem_torch_free(&x, 4, 0, nullptr);  // nothing to free: no crash, an error text
  CHECK(last_error().find("gpumem_torch_free") != std::string::npos);
  gpumem_string_free(nullptr);

  // Null pointers are refused before anything else.
  CHECK(gpumem_start(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_start_from_file(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_start_from_file("") == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_attach(nullptr) == GPUMEM_INVALID_ARGUMENT);
  gpumem::client::endpoint empty;
  CHECK(gpumem_attach(&empty) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_malloc(4096, -1, nullptr, nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_free(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_device_count(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_is_sleeping(nullptr, 0, nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_statistics_json(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_snapshot_json(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_push_tag(nullptr) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_push_tag("") == GPUMEM_INVALID_TAG);
  CHECK(gpumem_pop_tag() == GPUMEM_NO_TAG_SCOPE);
  CHECK(last_error().find("no tag scope") != std::string::npos);
}

TEST_CASE("C ABI: a start refuses bad options and a second start", "[c_abi][errors]") {
  stop_at_exit stop;
  CHECK(gpumem_start("--gpumem.no-such-option=1") == GPUMEM_START_FAILED);
  CHECK(last_error().find("no-such-option") != std::string::npos);
  CHECK(gpumem_start("--gpumem.pressure.warning=1.7") == GPUMEM_START_FAILED);
  CHECK(last_error().find("gpumem.pressure.warning") != std::string::npos);
  CHECK(gpumem_start("--help") == GPUMEM_START_FAILED);
  CHECK(gpumem_start_from_file("/nonexistent/gpumem.conf") == GPUMEM_START_FAILED);
  CHECK(gpumem_is_started() == 0);

  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  CHECK(gpumem_is_started() == 1);
  CHECK(gpumem_start(host_options) == GPUMEM_ALREADY_STARTED);
  CHECK(gpumem_start_from_file("gpumem.conf") == GPUMEM_ALREADY_STARTED);
  int count = 0;
  REQUIRE(gpumem_device_count(&count) == GPUMEM_OK);
  CHECK(count == 2);
  REQUIRE(gpumem_stop() == GPUMEM_OK);
  CHECK(gpumem_is_started() == 0);
  // Started again after a stop.
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  REQUIRE(gpumem_stop() == GPUMEM_OK);
}

TEST_CASE("C ABI: start from a config file", "[c_abi]") {
  stop_at_exit stop;
  const std::string path = "c_abi_test_gpumem.conf";
  {
    std::ofstream out{path};
    out << "[gpumem]\nbackend = \"host\"\nlog-level = \"warn\"\n[gpumem.host]\ndevices = 3\n"
           "capacity = \"64M\"\n";
  }
  REQUIRE(gpumem_start_from_file(path.c_str()) == GPUMEM_OK);
  int count = 0;
  REQUIRE(gpumem_device_count(&count) == GPUMEM_OK);
  CHECK(count == 3);
  REQUIRE(gpumem_stop() == GPUMEM_OK);
  {
    std::ofstream out{path};
    out << "[gpumem]\nbackend = \"nowhere\"\n";
  }
  CHECK(gpumem_start_from_file(path.c_str()) == GPUMEM_START_FAILED);
  CHECK(last_error().find("backend") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("C ABI: malloc and free, tags from scopes, every bad pointer", "[c_abi][errors]") {
  stop_at_exit stop;
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);

  void* p = nullptr;
  REQUIRE(gpumem_malloc(100000, -1, nullptr, &p) == GPUMEM_OK);
  REQUIRE(p != nullptr);
  std::memset(p, 0xab, 100000);
  REQUIRE(gpumem_push_tag("kv_cache") == GPUMEM_OK);
  void* kv = nullptr;
  REQUIRE(gpumem_malloc(4096, 1, nullptr, &kv) == GPUMEM_OK);
  void* named = nullptr;
  REQUIRE(gpumem_malloc(4096, -1, "weights", &named) == GPUMEM_OK);
  REQUIRE(gpumem_pop_tag() == GPUMEM_OK);
  CHECK(gpumem_pop_tag() == GPUMEM_NO_TAG_SCOPE);

  char* json = nullptr;
  REQUIRE(gpumem_statistics_json(&json) == GPUMEM_OK);
  auto stats = nlohmann::json::parse(json);
  gpumem_string_free(json);
  CHECK(stats["devices"].size() == 2);
  CHECK(stats["devices"][1]["tags"].contains("kv_cache"));
  CHECK(stats["total"]["tags"].contains("weights"));
  CHECK(stats["devices"][1]["tags"]["kv_cache"]["allocated_bytes"]["current"] >= 4096);
  // The same document as the control plane's GET /v1/stats: every counter, the
  // histograms, and a total that names no device.
  for (const char* key : {"ooms", "chunks_created", "segments_created", "defragmentations",
                          "sleep_durations", "wake_durations"})
    CHECK(stats["devices"][0].contains(key));
  CHECK(stats["total"]["sleep_durations"]["counts"].size() ==
        stats["total"]["sleep_durations"]["upper_bounds"].size() + 1);  // and +Inf
  CHECK_FALSE(stats["total"].contains("device"));

  REQUIRE(gpumem_snapshot_json(&json) == GPUMEM_OK);
  auto snap = nlohmann::json::parse(json);
  gpumem_string_free(json);
  CHECK(snap["devices"].size() == 2);

  // Bad input: each an error with a message, nothing lost.
  void* q = nullptr;
  CHECK(gpumem_malloc(0, -1, nullptr, &q) == GPUMEM_ZERO_SIZE);
  CHECK(q == nullptr);
  CHECK(gpumem_malloc(std::size_t{1} << 50, -1, nullptr, &q) == GPUMEM_TOO_LARGE);
  CHECK(gpumem_malloc(4096, 7, nullptr, &q) == GPUMEM_UNKNOWN_DEVICE);
  CHECK(gpumem_malloc(4096, -3, nullptr, &q) == GPUMEM_UNKNOWN_DEVICE);
  CHECK(gpumem_malloc(4096, -1, "", &q) == GPUMEM_INVALID_TAG);
  CHECK_FALSE(last_error().empty());
  int local = 0;
  CHECK(gpumem_free(&local) == GPUMEM_UNKNOWN_REGION);
  CHECK(gpumem_free(static_cast<char*>(p) + 8) == GPUMEM_UNKNOWN_REGION);
  REQUIRE(gpumem_free(p) == GPUMEM_OK);
  CHECK(gpumem_free(p) == GPUMEM_DOUBLE_FREE);
  CHECK(last_error().find("freed already") != std::string::npos);
  REQUIRE(gpumem_free(kv) == GPUMEM_OK);
  REQUIRE(gpumem_free(named) == GPUMEM_OK);

  REQUIRE(gpumem_statistics_json(&json) == GPUMEM_OK);
  stats = nlohmann::json::parse(json);
  gpumem_string_free(json);
  CHECK(stats["total"]["total"]["allocated_bytes"]["current"] == 0);
  REQUIRE(gpumem_stop() == GPUMEM_OK);
  // The pointers of a stopped runtime are unknown to the next one.
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  CHECK(gpumem_free(kv) == GPUMEM_UNKNOWN_REGION);
}

TEST_CASE("C ABI: sleep keeps the weights' bytes; bad levels and tag arrays refused",
          "[c_abi][sleep][errors]") {
  stop_at_exit stop;
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  void* w = nullptr;
  void* kv = nullptr;
  REQUIRE(gpumem_malloc(3 << 20, -1, "weights", &w) == GPUMEM_OK);
  REQUIRE(gpumem_malloc(1 << 20, -1, "kv_cache", &kv) == GPUMEM_OK);
  gpumem::test::fill_pattern(reinterpret_cast<std::uint64_t>(w), 3 << 20, 3);

  const char* bad[] = {"weights", nullptr};
  CHECK(gpumem_sleep(1, nullptr, 2) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_sleep(1, bad, 2) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_wake_up(bad, 2) == GPUMEM_INVALID_ARGUMENT);
  int sleeping = -1;
  CHECK(gpumem_is_sleeping(bad, 2, &sleeping) == GPUMEM_INVALID_ARGUMENT);
  CHECK(gpumem_sleep(5, nullptr, 0) == GPUMEM_INVALID_CONFIG);
  CHECK(last_error().find("gpumem_sleep") != std::string::npos);
  CHECK(gpumem_sleep(-2, nullptr, 0) == GPUMEM_INVALID_CONFIG);
  REQUIRE(gpumem_is_sleeping(nullptr, 0, &sleeping) == GPUMEM_OK);
  CHECK(sleeping == 0);

  REQUIRE(gpumem_sleep(1, nullptr, 0) == GPUMEM_OK);
  REQUIRE(gpumem_is_sleeping(nullptr, 0, &sleeping) == GPUMEM_OK);
  CHECK(sleeping == 1);
  const char* weights[] = {"weights"};
  REQUIRE(gpumem_is_sleeping(weights, 1, &sleeping) == GPUMEM_OK);
  CHECK(sleeping == 1);
  REQUIRE(gpumem_wake_up(weights, 1) == GPUMEM_OK);
  CHECK(gpumem::test::has_pattern(reinterpret_cast<std::uint64_t>(w), 3 << 20, 3));
  REQUIRE(gpumem_wake_up(nullptr, 0) == GPUMEM_OK);
  REQUIRE(gpumem_is_sleeping(nullptr, 0, &sleeping) == GPUMEM_OK);
  CHECK(sleeping == 0);
  CHECK(gpumem_free(w) == GPUMEM_OK);
  CHECK(gpumem_free(kv) == GPUMEM_OK);
}

TEST_CASE("C ABI: PyTorch's allocator hooks take the thread's tag", "[c_abi][torch]") {
  stop_at_exit stop;
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  REQUIRE(gpumem_push_tag("weights") == GPUMEM_OK);
  void* p = gpumem_torch_malloc(1 << 20, 1, nullptr);
  REQUIRE(p != nullptr);
  REQUIRE(gpumem_pop_tag() == GPUMEM_OK);
  std::memset(p, 1, 1 << 20);
  CHECK(gpumem_torch_malloc(0, 0, nullptr) == nullptr);
  CHECK(last_error().find("zero_size") == std::string::npos);  // the C layer's own text
  CHECK(gpumem_torch_malloc(-5, 0, nullptr) == nullptr);
  CHECK(gpumem_torch_malloc(4096, 9, nullptr) == nullptr);
  char* json = nullptr;
  REQUIRE(gpumem_statistics_json(&json) == GPUMEM_OK);
  auto stats = nlohmann::json::parse(json);
  gpumem_string_free(json);
  CHECK(stats["devices"][1]["tags"]["weights"]["allocated_bytes"]["current"] >= (1 << 20));
  gpumem_torch_free(p, 1 << 20, 1, nullptr);
  gpumem_torch_free(p, 1 << 20, 1, nullptr);  // a double free: refused, no crash
  CHECK(last_error().find("freed already") != std::string::npos);
  gpumem_torch_free(nullptr, 0, 0, nullptr);
  CHECK(last_error().find("NULL") != std::string::npos);
}

TEST_CASE("C ABI: many threads allocate and free at once", "[c_abi][threads]") {
  stop_at_exit stop;
  REQUIRE(gpumem_start(host_options) == GPUMEM_OK);
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 6; ++t)
    pool.emplace_back([&, t] {
      if (gpumem_push_tag(t % 2 ? "kv_cache" : "activations") != GPUMEM_OK)
        ++failures;
      for (int i = 0; i < 100; ++i) {
        void* p = gpumem_torch_malloc(4096 * (1 + i % 4), t % 2, nullptr);
        if (p == nullptr || gpumem_free(p) != GPUMEM_OK)
          ++failures;
      }
      if (gpumem_pop_tag() != GPUMEM_OK)
        ++failures;
    });
  for (auto& th : pool)
    th.join();
  CHECK(failures == 0);
}

TEST_CASE("C ABI: attached to a runtime a C++ host started", "[c_abi][attach]") {
  gpumem::test::client_fixture fx;
  auto endpoint = fx.endpoint();
  REQUIRE(gpumem_attach(&endpoint) == GPUMEM_OK);
  CHECK(gpumem_attach(&endpoint) == GPUMEM_ALREADY_STARTED);
  int count = 0;
  REQUIRE(gpumem_device_count(&count) == GPUMEM_OK);
  CHECK(count == 2);
  void* p = nullptr;
  REQUIRE(gpumem_malloc(8192, 0, "weights", &p) == GPUMEM_OK);
  // The host sees the C interface's allocation.
  gpumem::client::blocking_client host{fx.endpoint()};
  auto stats = host.statistics();
  REQUIRE(stats.ok());
  CHECK(stats->total.total.allocated.current >= 8192);
  REQUIRE(gpumem_free(p) == GPUMEM_OK);

  // The library keeps its own client code: the host's C++ scope is not the C one's.
  auto tagged = [&](const std::string& tag) {
    auto s = host.statistics();
    REQUIRE(s.ok());
    for (const auto& t : s->total.tags)
      if (t.tag == tag)
        return t.grid.allocated.current;
    return std::int64_t{0};
  };
  {
    auto scope = host.scope("kv_cache");
    REQUIRE(gpumem_malloc(4096, 0, nullptr, &p) == GPUMEM_OK);
    CHECK(tagged("default") >= 4096);
    CHECK(tagged("kv_cache") == 0);
    REQUIRE(gpumem_free(p) == GPUMEM_OK);
  }
  REQUIRE(gpumem_stop() == GPUMEM_OK);  // detaches; the host's runtime runs on
  CHECK(host.allocate(4096).ok());
}
