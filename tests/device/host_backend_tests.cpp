// What only the host backend promises: configured capacities and granularities,
// exact accounting, real host memory behind the addresses, and thread safety.

#include <catch2/catch.hpp>

#include <cstring>
#include <thread>
#include <vector>

#include "device/test_patterns.hpp"
#include "support/copy_wait.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::cuda;

namespace {

host_backend_config devices(std::vector<host_device_config> list) {
  host_backend_config config;
  config.devices = std::move(list);
  return config;
}

} // namespace

TEST_CASE("host devices take their capacity and granularity from configuration", "[host]") {
  host_backend backend(devices({{8 * MiB, 2 * MiB, 4 * MiB}, {1 * MiB, 64 * KiB, 64 * KiB}}));
  REQUIRE(*backend.device_count() == 2);
  auto p0 = *backend.properties(0);
  CHECK(p0.total_memory == 8 * MiB);
  CHECK(p0.granularity_minimum == 2 * MiB);
  CHECK(p0.granularity_recommended == 4 * MiB);
  CHECK(p0.name == "gpumem host device 0");
  auto p1 = *backend.properties(1);
  CHECK(p1.total_memory == 1 * MiB);
  CHECK(p1.granularity_minimum == 64 * KiB);

  // Device 1 fills up after 16 chunks of 64 KiB; device 0 is unaffected.
  std::vector<chunk_handle> chunks;
  for (int i = 0; i < 16; ++i)
    chunks.push_back(*backend.create_chunk(1, 64 * KiB));
  CHECK(backend.memory(1)->free == 0);
  CHECK(backend.memory(0)->free == 8 * MiB);
  auto over = backend.create_chunk(1, 64 * KiB);
  REQUIRE_FALSE(over.ok());
  CHECK(over.error().code() == error_code::out_of_memory);
  CHECK(over.error().name() == "CUDA_ERROR_OUT_OF_MEMORY");
  // The message gives the figures a user needs.
  CHECK_THAT(over.error().message(), Catch::Contains("1 MiB of 1 MiB in use")
                                       && Catch::Contains("0 B free"));
  for (auto c : chunks)
    REQUIRE(backend.release_chunk(c).ok());
  CHECK(backend.memory(1)->free == 1 * MiB);
}

TEST_CASE("host device memory is real memory at the mapped address", "[host]") {
  host_backend backend(devices({{16 * MiB, 2 * MiB, 2 * MiB}}));
  auto base = *backend.reserve(0, 4 * MiB);
  auto chunk = *backend.create_chunk(0, 2 * MiB);
  REQUIRE(backend.map(base, 2 * MiB, chunk).ok());
  REQUIRE(backend.set_access(0, base, 2 * MiB).ok());

  // Written through the pointer, read through a copy, and the other way round.
  auto* bytes = reinterpret_cast<std::byte*>(base);
  test::fill_pattern(bytes, 2 * MiB, 5);
  auto out = *backend.allocate_pinned(2 * MiB);
  REQUIRE(test::await_copy(**backend.copy_to_host_async(0, out.data(), base, 2 * MiB)).ok());
  CHECK(std::memcmp(out.data(), bytes, 2 * MiB) == 0);

  // A second mapping of the same chunk views the same pages.
  REQUIRE(backend.map(base + 2 * MiB, 2 * MiB, chunk).ok());
  REQUIRE(backend.set_access(0, base + 2 * MiB, 2 * MiB).ok());
  CHECK(std::memcmp(bytes, bytes + 2 * MiB, 2 * MiB) == 0);

  REQUIRE(backend.unmap(base, 4 * MiB).ok());  // two whole mappings in one call
  REQUIRE(backend.release_chunk(chunk).ok());
  REQUIRE(backend.free_reservation(base, 4 * MiB).ok());
  auto usage = backend.current_usage();
  CHECK(usage.reservations == 0);
  CHECK(usage.chunks == 0);
  CHECK(usage.mappings == 0);
  CHECK(usage.physical_bytes == 0);
}

TEST_CASE("host backend refuses what CUDA refuses", "[host]") {
  host_backend backend(devices({{16 * MiB, 2 * MiB, 2 * MiB}}));
  auto base = *backend.reserve(0, 8 * MiB);
  auto chunk = *backend.create_chunk(0, 4 * MiB);
  REQUIRE(backend.map(base, 4 * MiB, chunk).ok());

  SECTION("copies need access to the device range") {
    auto host = *backend.allocate_pinned(2 * MiB);
    auto copy = backend.copy_to_host_async(0, host.data(), base, 2 * MiB);
    REQUIRE_FALSE(copy.ok());
    CHECK(copy.error().code() == error_code::invalid_value);
    REQUIRE(backend.set_access(0, base, 4 * MiB).ok());
    // Access granted, but the copy runs past the mapped range.
    auto past = backend.copy_to_device_async(0, base + 2 * MiB, host.data(), 4 * MiB);
    REQUIRE_FALSE(past.ok());
    CHECK(past.error().code() == error_code::invalid_value);
    CHECK(test::await_copy(**backend.copy_to_device_async(0, base + 2 * MiB, host.data(), 2 * MiB))
            .ok());
  }
  SECTION("unmap and set_access take whole mappings") {
    CHECK(backend.unmap(base, 2 * MiB).error().code() == error_code::invalid_value);
    CHECK(backend.unmap(base, 6 * MiB).error().code() == error_code::invalid_value);
    CHECK(backend.set_access(0, base + 2 * MiB, 2 * MiB).error().code()
          == error_code::invalid_value);
  }
  SECTION("a reservation is freed whole and empty") {
    CHECK(backend.free_reservation(base, 8 * MiB).error().code() == error_code::invalid_value);
    CHECK(backend.free_reservation(base, 4 * MiB).error().code() == error_code::invalid_value);
    CHECK(backend.free_reservation(base + 2 * MiB, 6 * MiB).error().code()
          == error_code::invalid_value);
  }
  SECTION("maps stay inside one reservation") {
    auto outside = backend.map(base + 8 * MiB, 2 * MiB, chunk);
    CHECK(outside.error().code() == error_code::invalid_value);
    CHECK(backend.map(base + 6 * MiB, 4 * MiB, chunk).error().code()
          == error_code::invalid_value);
  }
  SECTION("reservations align as asked") {
    auto aligned = backend.reserve(0, 2 * MiB, 64 * MiB);
    REQUIRE(aligned.ok());
    CHECK(*aligned % (64 * MiB) == 0);
    CHECK(backend.reserve(0, 2 * MiB, 3 * MiB).error().code() == error_code::invalid_value);
    REQUIRE(backend.free_reservation(*aligned, 2 * MiB).ok());
  }
  REQUIRE(backend.unmap(base, 4 * MiB).ok());
  REQUIRE(backend.release_chunk(chunk).ok());
  REQUIRE(backend.free_reservation(base, 8 * MiB).ok());
  CHECK(backend.current_usage().physical_bytes == 0);
}

TEST_CASE("host backend serves many threads at once", "[host]") {
  host_backend backend(devices({{64 * MiB, 2 * MiB, 2 * MiB}, {64 * MiB, 2 * MiB, 2 * MiB}}));
  constexpr int threads_per_device = 3;
  constexpr int rounds = 40;
  std::vector<std::thread> workers;
  std::vector<int> failures(2 * threads_per_device, 0);
  for (int t = 0; t < 2 * threads_per_device; ++t) {
    workers.emplace_back([&, t] {
      int device = t % 2;
      auto host = backend.allocate_pinned(2 * MiB);
      for (int round = 0; round < rounds; ++round) {
        auto base = backend.reserve(device, 2 * MiB);
        auto chunk = backend.create_chunk(device, 2 * MiB);
        if (!base || !chunk || !backend.map(*base, 2 * MiB, *chunk)
            || !backend.set_access(device, *base, 2 * MiB)) {
          ++failures[static_cast<std::size_t>(t)];
          continue;
        }
        test::fill_pattern(host->data(), 2 * MiB, static_cast<std::uint64_t>(t * 1000 + round));
        auto sum = test::checksum(host->data(), 2 * MiB);
        auto in = backend.copy_to_device_async(device, *base, host->data(), 2 * MiB);
        if (!in || !test::await_copy_quietly(**in)
            || test::checksum(reinterpret_cast<std::byte*>(*base), 2 * MiB) != sum)
          ++failures[static_cast<std::size_t>(t)];
        if (!backend.unmap(*base, 2 * MiB) || !backend.release_chunk(*chunk)
            || !backend.free_reservation(*base, 2 * MiB))
          ++failures[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& w : workers)
    w.join();
  for (int f : failures)
    CHECK(f == 0);
  auto usage = backend.current_usage();
  CHECK(usage.reservations == 0);
  CHECK(usage.chunks == 0);
  CHECK(usage.physical_bytes == 0);
}

TEST_CASE("byte sizes print for people", "[host]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(2 * MiB) == "2 MiB");
  CHECK(format_bytes(3 * GiB / 2) == "1.50 GiB");
}
