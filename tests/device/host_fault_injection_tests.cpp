// Fault injection: every step of a map-and-fill transaction is made to fail in turn;
// the failure surfaces with the injected error, the rollback leaves nothing behind,
// and the backend works normally afterwards.

#include <catch2/catch.hpp>

#include <optional>
#include <vector>

#include "device/test_patterns.hpp"
#include "support/copy_wait.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::cuda;

namespace {

constexpr std::size_t chunk_size = 2 * MiB;
constexpr int chunk_count = 3;

/// Reserves a range, maps `chunk_count` fresh chunks with access, copies a pattern in
/// and back out. On any failure it undoes what it did, in reverse, and returns the error.
std::optional<device_error> map_and_fill(host_backend& backend) {
  auto size = chunk_size * chunk_count;
  auto base = backend.reserve(0, size);
  if (!base)
    return base.error();
  std::vector<chunk_handle> created;
  std::size_t mapped = 0;
  auto fail = [&](const device_error& error) {
    for (std::size_t i = 0; i < mapped; ++i)
      REQUIRE(backend.unmap(*base + i * chunk_size, chunk_size).ok());
    for (auto handle : created)
      REQUIRE(backend.release_chunk(handle).ok());
    REQUIRE(backend.free_reservation(*base, size).ok());
    return std::optional<device_error>(error);
  };

  for (int i = 0; i < chunk_count; ++i) {
    auto handle = backend.create_chunk(0, chunk_size);
    if (!handle)
      return fail(handle.error());
    created.push_back(*handle);
    if (auto s = backend.map(*base + mapped * chunk_size, chunk_size, *handle); !s)
      return fail(s.error());
    ++mapped;
    if (auto s = backend.set_access(0, *base + (mapped - 1) * chunk_size, chunk_size); !s)
      return fail(s.error());
  }
  auto host = backend.allocate_pinned(size);
  REQUIRE(host.ok());
  test::fill_pattern(host->data(), size, 99);
  auto expected = test::checksum(host->data(), size);
  auto in = backend.copy_to_device_async(0, *base, host->data(), size);
  if (!in)
    return fail(in.error());
  if (auto s = test::await_copy(**in, "the copy in"); !s)
    return fail(s.error());
  std::fill_n(host->data(), size, std::byte{0});
  auto out = backend.copy_to_host_async(0, host->data(), *base, size);
  if (!out)
    return fail(out.error());
  if (auto s = test::await_copy(**out, "the copy out"); !s)
    return fail(s.error());
  REQUIRE(test::checksum(host->data(), size) == expected);
  return fail(device_error{error_code::success, "completed"});  // clean up the success too
}

void require_clean(host_backend& backend) {
  auto usage = backend.current_usage();
  CHECK(usage.reservations == 0);
  CHECK(usage.chunks == 0);
  CHECK(usage.mappings == 0);
  CHECK(usage.physical_bytes == 0);
  auto info = backend.memory(0);
  REQUIRE(info.ok());
  CHECK(info->free == info->total);
}

} // namespace

TEST_CASE("a fault at every step rolls back to a clean backend", "[host][faults]") {
  struct step {
    fault_point point;
    const char* name;
    int calls;  // how often the transaction calls it
  };
  const std::vector<step> steps = {{fault_point::reserve, "reserve", 1},
                                   {fault_point::create, "create", chunk_count},
                                   {fault_point::map, "map", chunk_count},
                                   {fault_point::set_access, "set_access", chunk_count},
                                   {fault_point::copy, "copy", 2}};
  host_backend backend;
  for (const auto& s : steps) {
    for (int nth = 1; nth <= s.calls; ++nth) {
      for (auto code : {error_code::out_of_memory, error_code::invalid_value}) {
        INFO(s.name << " call " << nth << " fails with " << error_name(code));
        backend.inject_fault(s.point, nth, code);
        auto outcome = map_and_fill(backend);
        REQUIRE(outcome.has_value());
        CHECK(outcome->code() == code);
        CHECK_THAT(outcome->message(), Catch::Contains("injected fault"));
        require_clean(backend);
        // With no fault pending, the same transaction goes through.
        auto clean = map_and_fill(backend);
        REQUIRE(clean.has_value());
        CHECK(clean->code() == error_code::success);
        require_clean(backend);
      }
    }
  }
}

TEST_CASE("faults count calls from the moment they are planned", "[host][faults]") {
  host_backend backend;
  (void)backend.create_chunk(0, chunk_size).value();  // an earlier call is not counted
  backend.inject_fault(fault_point::create, 2, error_code::out_of_memory);
  auto first = backend.create_chunk(0, chunk_size);
  auto second = backend.create_chunk(0, chunk_size);
  auto third = backend.create_chunk(0, chunk_size);
  CHECK(first.ok());
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code() == error_code::out_of_memory);
  CHECK(third.ok());

  backend.inject_fault(fault_point::create, 1, error_code::out_of_memory);
  backend.clear_faults();
  CHECK(backend.create_chunk(0, chunk_size).ok());
}
