// The CUDA driver backend: how it fails without a driver (every machine), and its
// basic contract where a driver and a GPU exist.
#if GPUMEM_WITH_CUDA

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gpumem/cuda/cuda_driver_backend.hpp"
#include "support/copy_wait.hpp"

using namespace gpumem::cuda;
using Catch::Matchers::Contains;

namespace {

bool one_line(const std::string& text) {
  return text.find('\n') == std::string::npos;
}

// A driver named by $GPUMEM_CUDA_LIBRARY (the stand-in, in CI) must open: a wrong
// path would otherwise pass as "no driver here".
bool driver_named() {
  const char* named = std::getenv("GPUMEM_CUDA_LIBRARY");
  return named != nullptr && *named != '\0';
}

} // namespace

TEST_CASE("cuda_driver_backend: a missing driver library is driver_unavailable, in one line",
          "[cuda_driver_backend]") {
  const std::string library = "libgpumem-no-such-driver.so.1";
  auto opened = cuda_driver_backend::open({.library = library});
  REQUIRE_FALSE(opened.ok());
  const device_error& error = opened.error();
  INFO(error.to_string());
  CHECK(error.code() == error_code::driver_unavailable);
  CHECK(error.name() == "GPUMEM_ERROR_DRIVER_UNAVAILABLE");
  CHECK_THAT(error.message(), Contains(library));
  CHECK_THAT(error.message(), Contains("--backend host"));
  CHECK(one_line(error.message()));
}

TEST_CASE("cuda_driver_backend: the default driver opens, or says why in one line",
          "[cuda_driver_backend]") {
  auto opened = cuda_driver_backend::open();
  if (driver_named())
    REQUIRE(opened.ok());
  if (!opened) {
    // No driver (CI), or a driver without a usable GPU: CUDA's own code.
    const device_error& error = opened.error();
    INFO(error.to_string());
    CHECK((error.code() == error_code::driver_unavailable || static_cast<int>(error.code()) > 0));
    CHECK(one_line(error.message()));
    CHECK_THAT(error.message(), Contains("host backend"));
    return;
  }
  cuda_driver_backend& backend = *opened.value();
  CHECK(backend.name() == "cuda");
  auto count = backend.device_count();
  REQUIRE(count.ok());
  CHECK(*count >= 0);

  auto past_end = backend.properties(*count);
  REQUIRE_FALSE(past_end.ok());
  CHECK(past_end.error().code() == error_code::invalid_device);
  auto negative = backend.properties(-1);
  REQUIRE_FALSE(negative.ok());
  CHECK(negative.error().code() == error_code::invalid_device);
}

// Runs where a driver with a VMM device exists (a GPU, or the stand-in named by
// $GPUMEM_CUDA_LIBRARY): reserve, back, open, copy there and back.
TEST_CASE("cuda_driver_backend: a mapped chunk round-trips data", "[cuda_driver_backend][gpu]") {
  auto opened = cuda_driver_backend::open();
  if (driver_named())
    REQUIRE(opened.ok());
  if (!opened) {
    WARN("no CUDA driver here: the round trip did not run");
    return;
  }
  cuda_driver_backend& backend = *opened.value();
  REQUIRE(backend.device_count().ok());
  if (*backend.device_count() == 0) {
    WARN("the CUDA driver sees no device: the round trip did not run");
    return;
  }
  auto props = backend.properties(0);
  REQUIRE(props.ok());
  if (!props->vmm_supported) {
    WARN("device 0 has no virtual memory management: the round trip did not run");
    return;
  }
  const std::size_t size = props->granularity_minimum;
  REQUIRE(size > 0);

  CHECK(backend.reserve(0, 0).error().code() == error_code::invalid_value);
  CHECK(backend.create_chunk(0, 0).error().code() == error_code::invalid_value);

  auto base = backend.reserve(0, 2 * size);
  REQUIRE(base.ok());
  auto chunk = backend.create_chunk(0, size);
  REQUIRE(chunk.ok());
  REQUIRE(backend.map(*base + size, size, *chunk).ok());
  REQUIRE(backend.set_access(0, *base + size, size).ok());

  auto out = backend.allocate_pinned(size);
  auto in = backend.allocate_pinned(size);
  REQUIRE(out.ok());
  REQUIRE(in.ok());
  for (std::size_t i = 0; i < size; ++i)
    out->data()[i] = static_cast<std::byte>(i * 7);
  std::memset(in->data(), 0, size);

  auto up = backend.copy_to_device_async(0, *base + size, out->data(), size);
  REQUIRE(up.ok());
  REQUIRE(gpumem::test::await_copy(**up, "the copy up").ok());
  auto down = backend.copy_to_host_async(0, in->data(), *base + size, size);
  REQUIRE(down.ok());
  REQUIRE(gpumem::test::await_copy(**down, "the copy down").ok());
  CHECK((*down)->ready());
  CHECK(std::memcmp(in->data(), out->data(), size) == 0);

  auto info = backend.memory(0);
  REQUIRE(info.ok());
  CHECK(info->free <= info->total);

  CHECK(backend.unmap(*base + size, size).ok());
  CHECK(backend.release_chunk(*chunk).ok());
  CHECK(backend.free_reservation(*base, 2 * size).ok());
}

#endif // GPUMEM_WITH_CUDA
