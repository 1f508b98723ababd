// The device-layer conformance suite: what every backend must do, written once.
// Runs on the host backend always and on the CUDA backend where a GPU is present.

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "device/conformance_backend.hpp"
#include "device/test_patterns.hpp"
#include "support/copy_wait.hpp"

using namespace gpumem;
using namespace gpumem::cuda;

namespace {

device_backend& backend() { return test::conformance_backend(); }

bool on_host() { return backend().name() == "host"; }

int device_count() {
  auto count = backend().device_count();
  REQUIRE(count.ok());
  return *count;
}

std::size_t granularity(int device) {
  auto props = backend().properties(device);
  REQUIRE(props.ok());
  return props->granularity_minimum;
}

/// Fails the test with the error's name and message when a call fails.
template <class T>
T must(result<T> r) {
  INFO((r.ok() ? std::string() : r.error().to_string()));
  REQUIRE(r.ok());
  return std::move(r).value();
}

void must(status s) {
  INFO((s.ok() ? std::string() : s.error().to_string()));
  REQUIRE(s.ok());
}

void copy_in(int device, device_ptr dst, const pinned_buffer& src, std::size_t size) {
  auto copy = must(backend().copy_to_device_async(device, dst, src.data(), size));
  must(test::await_copy(*copy, "a copy to the device"));
  CHECK(copy->ready());
}

void copy_out(int device, pinned_buffer& dst, device_ptr src, std::size_t size) {
  auto copy = must(backend().copy_to_host_async(device, dst.data(), src, size));
  must(test::await_copy(*copy, "a copy to the host"));
  CHECK(copy->ready());
}

void require_error(const status& s, error_code expected) {
  INFO((s.ok() ? std::string("succeeded") : s.error().to_string()));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code() == expected);
  CHECK_FALSE(s.error().message().empty());
}

template <class T>
void require_error(const result<T>& r, error_code expected) {
  INFO((r.ok() ? std::string("succeeded") : r.error().to_string()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == expected);
  CHECK_FALSE(r.error().message().empty());
}

/// One reservation with `chunks` chunks of `chunk_size` mapped back to back, accessible.
struct mapped_range {
  int device;
  std::size_t chunk_size;
  device_ptr base = 0;
  std::size_t size = 0;
  std::vector<chunk_handle> handles;

  mapped_range(int dev, std::size_t chunk, int chunks) : device(dev), chunk_size(chunk) {
    size = chunk_size * static_cast<std::size_t>(chunks);
    base = must(backend().reserve(device, size));
    map_fresh_chunks();
  }

  void map_fresh_chunks() {
    for (std::size_t offset = 0; offset < size; offset += chunk_size) {
      auto handle = must(backend().create_chunk(device, chunk_size));
      must(backend().map(base + offset, chunk_size, handle));
      handles.push_back(handle);
    }
    must(backend().set_access(device, base, size));
  }

  void unmap_and_release() {
    must(backend().unmap(base, size));
    for (auto handle : handles)
      must(backend().release_chunk(handle));
    handles.clear();
  }

  ~mapped_range() {
    if (!handles.empty()) {
      (void)backend().unmap(base, size);
      for (auto handle : handles)
        (void)backend().release_chunk(handle);
    }
    (void)backend().free_reservation(base, size);
  }
};

} // namespace

TEST_CASE("devices describe themselves", "[conformance]") {
  auto count = device_count();
  REQUIRE(count >= 1);
  for (int device = 0; device < count; ++device) {
    INFO("device " << device);
    auto props = must(backend().properties(device));
    CHECK(props.ordinal == device);
    CHECK_FALSE(props.name.empty());
    CHECK(props.total_memory > 0);
    CHECK(props.vmm_supported);
    CHECK(props.granularity_minimum > 0);
    CHECK(props.granularity_recommended >= props.granularity_minimum);
    CHECK(props.granularity_recommended % props.granularity_minimum == 0);
    auto info = must(backend().memory(device));
    CHECK(info.total == props.total_memory);
    CHECK(info.free <= info.total);
  }
  require_error(backend().properties(count), error_code::invalid_device);
  require_error(backend().properties(-1), error_code::invalid_device);
  require_error(backend().memory(count), error_code::invalid_device);
  require_error(backend().reserve(count, granularity(0)), error_code::invalid_device);
  require_error(backend().create_chunk(count, granularity(0)), error_code::invalid_device);
}

TEST_CASE("reserve, create, map, access, unmap, release, free: the whole life cycle",
          "[conformance]") {
  for (int device = 0; device < device_count(); ++device) {
    INFO("device " << device);
    auto chunk = granularity(device);
    auto free_before = must(backend().memory(device)).free;

    auto base = must(backend().reserve(device, 4 * chunk));
    CHECK(base % chunk == 0);
    auto first = must(backend().create_chunk(device, chunk));
    auto second = must(backend().create_chunk(device, chunk));
    auto free_held = must(backend().memory(device)).free;
    if (on_host())
      CHECK(free_held == free_before - 2 * chunk);
    else
      CHECK(free_held <= free_before - 2 * chunk);

    // Chunks map anywhere in the reservation, each from its start (cuMemMap's offset
    // must be zero), with holes between them.
    must(backend().map(base + chunk, chunk, first));
    must(backend().map(base + 3 * chunk, chunk, second));
    must(backend().set_access(device, base + chunk, chunk));
    must(backend().set_access(device, base + 3 * chunk, chunk));

    auto host = must(backend().allocate_pinned(chunk));
    test::fill_pattern(host.data(), chunk, 7);
    copy_in(device, base + chunk, host, chunk);
    auto readback = must(backend().allocate_pinned(chunk));
    // Two chunks: they must not alias.
    copy_out(device, readback, base + 3 * chunk, chunk);
    CHECK(test::checksum(readback.data(), chunk) != test::checksum(host.data(), chunk));
    copy_out(device, readback, base + chunk, chunk);
    CHECK(test::checksum(readback.data(), chunk) == test::checksum(host.data(), chunk));

    must(backend().unmap(base + chunk, chunk));
    must(backend().unmap(base + 3 * chunk, chunk));
    must(backend().release_chunk(first));
    must(backend().release_chunk(second));
    must(backend().free_reservation(base, 4 * chunk));
    if (on_host())
      CHECK(must(backend().memory(device)).free == free_before);
  }
}

TEST_CASE("the same address keeps its bytes through back up, release and restore",
          "[conformance]") {
  for (int device = 0; device < device_count(); ++device) {
    auto g = granularity(device);
    for (auto [chunk_granules, chunks] : {std::pair{1, 1}, {1, 3}, {2, 2}, {4, 1}}) {
      auto chunk = g * static_cast<std::size_t>(chunk_granules);
      INFO("device " << device << ", " << chunks << " x " << format_bytes(chunk));
      mapped_range range(device, chunk, chunks);
      auto original = must(backend().allocate_pinned(range.size));
      test::fill_pattern(original.data(), range.size, range.size + device);
      auto expected = test::checksum(original.data(), range.size);
      copy_in(device, range.base, original, range.size);

      // Back up in pieces (as a pipelined sleep does), all in flight at once.
      auto backup = must(backend().allocate_pinned(range.size));
      std::vector<copy_handle> copies;
      for (std::size_t offset = 0; offset < range.size; offset += chunk)
        copies.push_back(must(backend().copy_to_host_async(device, backup.data() + offset,
                                                           range.base + offset, chunk)));
      for (auto& copy : copies)
        must(test::await_copy(*copy, "a piece of the backup"));
      CHECK(test::checksum(backup.data(), range.size) == expected);

      auto base_before = range.base;
      range.unmap_and_release();
      range.map_fresh_chunks();
      REQUIRE(range.base == base_before);

      copy_in(device, range.base, backup, range.size);
      auto readback = must(backend().allocate_pinned(range.size));
      copy_out(device, readback, range.base, range.size);
      CHECK(test::checksum(readback.data(), range.size) == expected);
    }
  }
}

TEST_CASE("copies on one device complete in the order they were started", "[conformance]") {
  auto chunk = granularity(0);
  mapped_range range(0, chunk, 1);
  auto first = must(backend().allocate_pinned(chunk));
  auto second = must(backend().allocate_pinned(chunk));
  test::fill_pattern(first.data(), chunk, 1);
  test::fill_pattern(second.data(), chunk, 2);
  auto a = must(backend().copy_to_device_async(0, range.base, first.data(), chunk));
  auto b = must(backend().copy_to_device_async(0, range.base, second.data(), chunk));
  must(test::await_copy(*b, "the second copy"));
  CHECK(a->ready());
  must(a->wait());
  auto readback = must(backend().allocate_pinned(chunk));
  copy_out(0, readback, range.base, chunk);
  CHECK(test::checksum(readback.data(), chunk) == test::checksum(second.data(), chunk));
}

TEST_CASE("a released chunk lives until its last mapping goes", "[conformance]") {
  auto chunk = granularity(0);
  auto free_before = must(backend().memory(0)).free;
  auto base = must(backend().reserve(0, chunk));
  auto handle = must(backend().create_chunk(0, chunk));
  must(backend().map(base, chunk, handle));
  must(backend().set_access(0, base, chunk));
  auto data = must(backend().allocate_pinned(chunk));
  test::fill_pattern(data.data(), chunk, 3);
  copy_in(0, base, data, chunk);

  must(backend().release_chunk(handle));
  auto readback = must(backend().allocate_pinned(chunk));
  copy_out(0, readback, base, chunk);
  CHECK(test::checksum(readback.data(), chunk) == test::checksum(data.data(), chunk));
  if (on_host())
    CHECK(must(backend().memory(0)).free == free_before - chunk);
  // The handle is gone for new mappings.
  require_error(backend().map(base, chunk, handle), error_code::invalid_value);

  must(backend().unmap(base, chunk));
  must(backend().free_reservation(base, chunk));
  if (on_host())
    CHECK(must(backend().memory(0)).free == free_before);
}

TEST_CASE("misuse gets CUDA's errors and changes nothing", "[conformance]") {
  auto chunk = granularity(0);
  auto base = must(backend().reserve(0, 4 * chunk));
  auto handle = must(backend().create_chunk(0, 2 * chunk));

  SECTION("sizes") {
    require_error(backend().reserve(0, 0), error_code::invalid_value);
    require_error(backend().create_chunk(0, 0), error_code::invalid_value);
    require_error(backend().allocate_pinned(0), error_code::invalid_value);
    require_error(backend().copy_to_host_async(0, nullptr, base, 0), error_code::invalid_value);
    if (chunk > 1) {
      require_error(backend().reserve(0, chunk + 1), error_code::invalid_value);
      require_error(backend().create_chunk(0, chunk / 2), error_code::invalid_value);
    }
  }
  SECTION("more than the device holds") {
    auto total = must(backend().properties(0)).total_memory;
    require_error(backend().create_chunk(0, round_up(2 * total, chunk)), error_code::out_of_memory);
  }
  SECTION("unaligned map") {
    if (chunk > 1) {
      require_error(backend().map(base + chunk / 2, chunk, handle), error_code::invalid_value);
      require_error(backend().map(base, chunk / 2, handle), error_code::invalid_value);
    }
  }
  SECTION("map past the chunk's end") {
    require_error(backend().map(base, 3 * chunk, handle), error_code::invalid_value);
  }
  SECTION("map over a mapped range") {
    must(backend().map(base, 2 * chunk, handle));
    require_error(backend().map(base, chunk, handle), error_code::invalid_value);
    require_error(backend().map(base + chunk, 2 * chunk, handle), error_code::invalid_value);
    must(backend().unmap(base, 2 * chunk));
  }
  SECTION("unmap of an unmapped range") {
    require_error(backend().unmap(base, chunk), error_code::invalid_value);
  }
  SECTION("release of an unknown handle") {
    // The driver's behaviour is undefined for these: the backend refuses them itself.
    require_error(backend().release_chunk(0), error_code::invalid_value);
    auto spare = must(backend().create_chunk(0, chunk));
    must(backend().release_chunk(spare));
    require_error(backend().release_chunk(spare), error_code::invalid_value);
  }

  // Whatever failed, the good state is intact and fully usable.
  must(backend().map(base, 2 * chunk, handle));
  must(backend().set_access(0, base, 2 * chunk));
  auto data = must(backend().allocate_pinned(2 * chunk));
  test::fill_pattern(data.data(), 2 * chunk, 11);
  copy_in(0, base, data, 2 * chunk);
  must(backend().unmap(base, 2 * chunk));
  must(backend().release_chunk(handle));
  must(backend().free_reservation(base, 4 * chunk));
}

TEST_CASE("pinned buffers are usable host memory", "[conformance]") {
  auto buffer = must(backend().allocate_pinned(3 * MiB + 5));
  REQUIRE(buffer.size() == 3 * MiB + 5);
  std::memset(buffer.data(), 0xAB, buffer.size());
  CHECK(buffer.data()[buffer.size() - 1] == std::byte{0xAB});
  pinned_buffer moved = std::move(buffer);
  CHECK(buffer.empty());
  CHECK(moved.data()[0] == std::byte{0xAB});
}
