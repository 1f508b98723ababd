// Backend selection by name: host, cuda, auto, and a clear error for anything else.

#include <catch2/catch.hpp>

#include "gpumem/cuda/backend_factory.hpp"
#include "gpumem/cuda/byte_units.hpp"

using namespace gpumem;
using namespace gpumem::cuda;

TEST_CASE("host is chosen by name with the configured devices", "[factory]") {
  host_backend_config config;
  config.devices = {host_device_config{8 * MiB, 2 * MiB, 2 * MiB}};
  auto choice = make_backend("host", config);
  REQUIRE(choice.ok());
  CHECK(choice->backend->name() == "host");
  CHECK(*choice->backend->device_count() == 1);
  CHECK(choice->reason == "host backend (1 emulated device)");
}

TEST_CASE("auto takes CUDA where it works and says why it fell back otherwise", "[factory]") {
  auto cuda = make_backend("cuda");
  auto chosen = make_backend("auto");
  REQUIRE(chosen.ok());
  if (cuda.ok()) {
    CHECK(chosen->backend->name() == "cuda");
  } else {
    CHECK(chosen->backend->name() == "host");
    CHECK_THAT(chosen->reason, Catch::Contains("CUDA is unusable")
                                 && Catch::Contains(cuda.error().name()));
    // The reason for not using CUDA is one line that points at the host backend.
    CHECK(cuda.error().message().find('\n') == std::string::npos);
    CHECK_THAT(cuda.error().message(), Catch::Contains("host backend"));
  }
}

TEST_CASE("an unknown backend name is an error that lists the choices", "[factory]") {
  auto choice = make_backend("opencl");
  REQUIRE_FALSE(choice.ok());
  CHECK(choice.error().code() == error_code::invalid_value);
  CHECK_THAT(choice.error().message(), Catch::Contains("'opencl'") && Catch::Contains("auto, host or cuda"));
}
