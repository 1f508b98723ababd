// The CUDA driver backend on the driver stand-in: what a real GPU process demands of
// it (contexts left as found, lazy primary contexts, sticky errors, a copy never left
// running unseen, peers, exportable chunks, a driver never unloaded).

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "gpumem/cuda/byte_units.hpp"
#include "support/copy_wait.hpp"
#include "support/cuda_standin.hpp"

using namespace gpumem;
using namespace gpumem::cuda;
using test::standin;
using test::standin_backend;

namespace {

constexpr std::size_t chunk = 2 * MiB;

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

/// One chunk mapped and accessible on `device`, unmapped and freed at the end.
struct mapped_chunk {
  device_backend& backend;
  device_ptr base = 0;
  chunk_handle handle = 0;

  mapped_chunk(device_backend& b, int device) : backend(b) {
    base = must(backend.reserve(device, chunk));
    handle = must(backend.create_chunk(device, chunk));
    must(backend.map(base, chunk, handle));
    must(backend.set_access(device, base, chunk));
  }
  ~mapped_chunk() {
    (void)backend.unmap(base, chunk);
    (void)backend.release_chunk(handle);
    (void)backend.free_reservation(base, chunk);
  }
};

} // namespace

TEST_CASE("cuda on the stand-in: the caller's current context is left as it was",
          "[cuda_standin][context]") {
  standin_backend sb;
  // open() makes nothing current.
  CHECK(test::current_context() == nullptr);
  {
    test::client_context client(1);  // the client works on device 1 on this thread
    auto expect_client = [&](const char* after) {
      INFO("after " << after);
      CHECK(test::current_context() == client.context);
    };
    auto props = must(sb->properties(0));
    expect_client("properties");
    (void)must(sb->memory(0));
    expect_client("memory");
    {
      mapped_chunk m(*sb, 0);
      expect_client("reserve, create_chunk, map, set_access");
      auto out = must(sb->allocate_pinned(chunk));
      expect_client("allocate_pinned");
      std::memset(out.data(), 0x42, chunk);
      auto up = must(sb->copy_to_device_async(0, m.base, out.data(), chunk));
      expect_client("copy_to_device_async");
      must(test::await_copy(*up, "the copy up"));
      expect_client("the copy's ready() and wait()");
      must(sb->synchronize(0));
      expect_client("synchronize");
      up.reset();
      out = pinned_buffer{};
      expect_client("the copy's and the buffer's destruction");
    }
    expect_client("unmap, release_chunk, free_reservation");
  }
  CHECK(test::current_context() == nullptr);
}

TEST_CASE("cuda on the stand-in: primary contexts are retained on first use, per device",
          "[cuda_standin][context]") {
  {
    standin_backend warm;  // the stand-in initialised, so devices can be marked busy
  }
  REQUIRE(standin().reset() == CUDA_SUCCESS);
  REQUIRE(standin().set_unavailable(0, 1) == CUDA_SUCCESS);
  struct restore {
    ~restore() { standin().set_unavailable(0, 0); }
  } restore_device_0;

  // Device 0 is busy or exclusive elsewhere: the backend still opens.
  auto opened = cuda_driver_backend::open({.library = test::standin_library});
  INFO((opened.ok() ? std::string("ok") : opened.error().to_string()));
  REQUIRE(opened.ok());
  auto& backend = **opened;
  CHECK_FALSE(standin().primary_active(0));
  CHECK_FALSE(standin().primary_active(1));
  CHECK(must(backend.properties(0)).vmm_supported);  // describing needs no context
  CHECK_FALSE(standin().primary_active(1));

  // Device 1 works through its own context alone, the calls that name no device too.
  {
    mapped_chunk m(backend, 1);
    CHECK(standin().primary_active(1));
    auto data = must(backend.allocate_pinned(chunk));
    std::memset(data.data(), 0x17, chunk);
    auto up = must(backend.copy_to_device_async(1, m.base, data.data(), chunk));
    must(test::await_copy(*up));
    must(backend.synchronize(1));
    CHECK(std::memcmp(reinterpret_cast<void*>(m.base), data.data(), chunk) == 0);
  }
  CHECK_FALSE(standin().primary_active(0));

  // Device 0 says why it cannot be used, in the driver's words.
  auto refused = backend.memory(0);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().name() == "CUDA_ERROR_DEVICE_UNAVAILABLE");
  CHECK(backend.synchronize(0).ok());  // never used: nothing to wait for
}

TEST_CASE("cuda on the stand-in: a sticky error loses the device and no call follows",
          "[cuda_standin][sticky]") {
  standin_backend sb;
  mapped_chunk m(*sb, 0);
  auto buffer = must(sb->allocate_pinned(chunk));
  REQUIRE(standin().inject_copy_fault(CUDA_ERROR_ILLEGAL_ADDRESS) == CUDA_SUCCESS);
  // The fault surfaces where the driver reports it: queuing the event behind the copy
  // if the copy already ran, else the copy's completion.
  auto copy = sb->copy_to_host_async(0, buffer.data(), m.base, chunk);
  auto outcome = copy.ok() ? test::await_copy(**copy, "the faulting copy") : status(copy.error());
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error().code() == error_code::illegal_address);
  REQUIRE(sb->lost(0).has_value());
  CHECK(sb->lost(0)->name() == "CUDA_ERROR_ILLEGAL_ADDRESS");

  // Every later call for device 0 answers the sticky error without reaching the driver.
  const auto calls = standin().context_calls();
  auto memory = sb->memory(0);
  REQUIRE_FALSE(memory.ok());
  CHECK(memory.error().code() == error_code::illegal_address);
  CHECK(memory.error().message().find("lost") != std::string::npos);
  CHECK_FALSE(sb->reserve(0, chunk).ok());
  CHECK_FALSE(sb->synchronize(0).ok());
  CHECK_FALSE(sb->unmap(m.base, chunk).ok());
  CHECK_FALSE(sb->copy_to_host_async(0, buffer.data(), m.base, chunk).ok());
  CHECK(standin().context_calls() == calls);
  // Another device is another context: it goes on.
  CHECK_FALSE(sb->lost(1).has_value());
  CHECK(sb->memory(1).ok());
}

TEST_CASE("cuda on the stand-in: a failed event record leaves no copy running",
          "[cuda_standin][copy]") {
  standin_backend sb;
  mapped_chunk m(*sb, 0);
  std::memset(reinterpret_cast<void*>(m.base), 0x3C, chunk);
  auto backup = must(sb->allocate_pinned(chunk));
  std::memset(backup.data(), 0, chunk);
  REQUIRE(standin().hold_copies(1) == CUDA_SUCCESS);  // copies wait for a synchronize
  REQUIRE(standin().fail_next_event_record(CUDA_ERROR_OUT_OF_MEMORY) == CUDA_SUCCESS);
  auto copy = sb->copy_to_host_async(0, backup.data(), m.base, chunk);
  // Checked while copies are still held: only a synchronize can have run it.
  const bool copied = backup.data()[0] == std::byte{0x3C} && backup.data()[chunk - 1] == std::byte{0x3C};
  REQUIRE(standin().hold_copies(0) == CUDA_SUCCESS);
  REQUIRE_FALSE(copy.ok());
  CHECK(copy.error().name() == "CUDA_ERROR_OUT_OF_MEMORY");
  INFO("the failed copy's buffer must be the caller's again when the error comes back");
  CHECK(copied);
}

TEST_CASE("cuda on the stand-in: peers get access when configured", "[cuda_standin][peer]") {
  for (bool peers : {false, true}) {
    INFO("peer_access " << peers);
    standin_backend sb({.peer_access = peers});
    mapped_chunk m(*sb, 0);
    CUmemLocation peer{};
    peer.type = CU_MEM_LOCATION_TYPE_DEVICE;
    peer.id = 1;
    unsigned long long flags = 0;
    {
      test::client_context client(0);
      REQUIRE(standin().get_access(&flags, &peer, m.base) == CUDA_SUCCESS);
    }
    CHECK(flags == (peers ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE : CU_MEM_ACCESS_FLAGS_PROT_NONE));
    if (peers) {  // device 1 copies device 0's memory
      std::memset(reinterpret_cast<void*>(m.base), 0x61, chunk);
      auto out = must(sb->allocate_pinned(chunk));
      auto copy = must(sb->copy_to_host_async(1, out.data(), m.base, chunk));
      must(test::await_copy(*copy));
      CHECK(out.data()[chunk / 2] == std::byte{0x61});
    }
  }
}

TEST_CASE("cuda on the stand-in: chunks are exportable and RDMA-capable where supported",
          "[cuda_standin][chunk]") {
  for (bool wanted : {true, false}) {
    INFO("exportable and rdma_capable " << wanted);
    standin_backend sb({.exportable = wanted, .rdma_capable = wanted});
    auto handle = must(sb->create_chunk(0, chunk));
    CUmemAllocationProp prop{};
    {
      test::client_context client(0);
      REQUIRE(standin().chunk_properties(&prop, handle) == CUDA_SUCCESS);
    }
    CHECK(prop.requestedHandleTypes ==
          (wanted ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : CU_MEM_HANDLE_TYPE_NONE));
    CHECK(prop.allocFlags.gpuDirectRDMACapable == (wanted ? 1 : 0));
    must(sb->release_chunk(handle));
  }
}

TEST_CASE("cuda on the stand-in: a pinned buffer outliving its backend frees safely",
          "[cuda_standin][pinned]") {
  pinned_buffer late;
  {
    standin_backend sb;
    late = must(sb->allocate_pinned(64 * KiB));
    std::memset(late.data(), 0x7E, late.size());
  }
  // The backend is gone; the buffer still works and frees through a live context
  // (the stand-in aborts on memory freed after its context died).
  CHECK(late.data()[64 * KiB - 1] == std::byte{0x7E});
  late = pinned_buffer{};
  CHECK(standin().reset() == CUDA_SUCCESS);  // and that released the context
}

// Run alone (its own process, ctest cuda_standin.never_unloads): only then is the
// backend the library's sole user.
TEST_CASE("cuda on the stand-in: the driver library stays loaded after the backend goes",
          "[.][unload]") {
  {
    auto opened = cuda_driver_backend::open({.library = test::standin_library});
    REQUIRE(opened.ok());
    (void)(*opened)->memory(0);  // cuInit ran, a context was retained
  }
  void* still = dlopen(test::standin_library.c_str(), RTLD_NOW | RTLD_NOLOAD);
  CHECK(still != nullptr);
  if (still != nullptr)
    dlclose(still);
}
