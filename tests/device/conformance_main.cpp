// Runs the conformance suite against the backend named by --backend (host, cuda).
// Exits 77, which ctest reports as skipped, when that backend cannot run here.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "device/conformance_backend.hpp"
#include "gpumem/cuda/backend_factory.hpp"

namespace {
std::unique_ptr<gpumem::cuda::device_backend> backend_under_test;
}

namespace gpumem::test {
cuda::device_backend& conformance_backend() { return *backend_under_test; }
} // namespace gpumem::test

int main(int argc, char* argv[]) {
  Catch::Session session;
  std::string backend = "host";
  using Catch::clara::Opt;
  session.cli(session.cli() | Opt(backend, "host|cuda")["--backend"]("the backend to test"));
  if (int rc = session.applyCommandLine(argc, argv); rc != 0)
    return rc;

  auto choice = gpumem::cuda::make_backend(backend, gpumem::test::conformance_host_config());
  if (!choice) {
    std::printf("SKIPPED: the %s backend cannot run here: %s\n", backend.c_str(),
                choice.error().to_string().c_str());
    return 77;
  }
  std::printf("conformance suite on the %s\n", choice->reason.c_str());
  backend_under_test = std::move(choice->backend);
  int failed = session.run();
  backend_under_test.reset();
  return failed;
}
