#pragma once
// Tests of the CUDA backend on the driver stand-in (tests/cuda_standin): a backend
// opened on it, the stand-in's test-only entry points, and the few driver calls a
// test makes itself to look behind the backend or to act as the client (PyTorch).
//
// The stand-in is one library per process (the backend never unloads it), so its
// state carries over between test cases: each standin_backend resets it first, which
// also checks that the previous test released every context.

#include <cuda.h>
#include <dlfcn.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "cuda_standin/cuda_standin.h"
#include "gpumem/cuda/cuda_driver_backend.hpp"

namespace gpumem::test {

inline const std::string standin_library = GPUMEM_CUDA_STANDIN_PATH;

struct cuda_standin {
  decltype(&gpumemStandinLaunch) launch = nullptr;
  decltype(&gpumemStandinInjectCopyFault) inject_copy_fault = nullptr;
  decltype(&gpumemStandinFailNextEventRecord) fail_next_event_record = nullptr;
  decltype(&gpumemStandinHoldCopies) hold_copies = nullptr;
  decltype(&gpumemStandinSetUnavailable) set_unavailable = nullptr;
  decltype(&gpumemStandinContextCalls) context_calls = nullptr;
  decltype(&gpumemStandinReset) reset = nullptr;
  // Driver calls, by the names callers ask cuGetProcAddress for.
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuCtxGetCurrent) ctx_get_current = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primary_retain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) primary_release = nullptr;
  decltype(&::cuDevicePrimaryCtxGetState) primary_state = nullptr;
  decltype(&::cuMemGetAllocationPropertiesFromHandle) chunk_properties = nullptr;
  decltype(&::cuMemGetAccess) get_access = nullptr;

  /// Any driver entry point by the name callers ask cuGetProcAddress for.
  template <class Fn>
  Fn entry(const char* name) const {
    void* address = nullptr;
    INFO(name);
    REQUIRE(lookup(name, &address, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, nullptr) ==
            CUDA_SUCCESS);
    return reinterpret_cast<Fn>(address);
  }

  /// Loaded on first use (not before: a test may need the library not yet loaded).
  static const cuda_standin& get() {
    static const cuda_standin loaded = load();
    return loaded;
  }

  /// Whether a primary context is retained (by anyone) on `device`.
  bool primary_active(int device) const {
    unsigned flags = 0;
    int active = 0;
    REQUIRE(primary_state(device, &flags, &active) == CUDA_SUCCESS);
    return active != 0;
  }

private:
  decltype(&::cuGetProcAddress) lookup = nullptr;

  static cuda_standin load() {
    void* library = dlopen(standin_library.c_str(), RTLD_NOW | RTLD_LOCAL);
    INFO("dlopen " << standin_library << ": " << (library ? "ok" : dlerror()));
    REQUIRE(library != nullptr);
    cuda_standin s;
    const auto hook = [&](const char* name, auto& fn) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(library, name));
      INFO(name);
      REQUIRE(fn != nullptr);
    };
    hook("gpumemStandinLaunch", s.launch);
    hook("gpumemStandinInjectCopyFault", s.inject_copy_fault);
    hook("gpumemStandinFailNextEventRecord", s.fail_next_event_record);
    hook("gpumemStandinHoldCopies", s.hold_copies);
    hook("gpumemStandinSetUnavailable", s.set_unavailable);
    hook("gpumemStandinContextCalls", s.context_calls);
    hook("gpumemStandinReset", s.reset);
    hook("cuGetProcAddress_v2", s.lookup);
    const auto driver = [&](const char* name, auto& fn) {
      fn = s.entry<std::remove_reference_t<decltype(fn)>>(name);
    };
    driver("cuInit", s.init);
    driver("cuCtxGetCurrent", s.ctx_get_current);
    driver("cuCtxSetCurrent", s.ctx_set_current);
    driver("cuDevicePrimaryCtxRetain", s.primary_retain);
    driver("cuDevicePrimaryCtxRelease", s.primary_release);
    driver("cuDevicePrimaryCtxGetState", s.primary_state);
    driver("cuMemGetAllocationPropertiesFromHandle", s.chunk_properties);
    driver("cuMemGetAccess", s.get_access);
    REQUIRE(s.init(0) == CUDA_SUCCESS);
    return s;
  }
};

inline const cuda_standin& standin() { return cuda_standin::get(); }

/// The CUDA backend opened on the stand-in, after a reset of the stand-in.
struct standin_backend {
  std::unique_ptr<cuda::cuda_driver_backend> backend;

  explicit standin_backend(cuda::cuda_backend_options options = {}) {
    // Everything a previous test retained must be released by now.
    REQUIRE(standin().reset() == CUDA_SUCCESS);
    options.library = standin_library;
    auto opened = cuda::cuda_driver_backend::open(options);
    INFO((opened.ok() ? std::string("ok") : opened.error().to_string()));
    REQUIRE(opened.ok());
    backend = std::move(opened).value();
  }

  cuda::cuda_driver_backend& operator*() { return *backend; }
  cuda::cuda_driver_backend* operator->() { return backend.get(); }
};

/// The client's side, as PyTorch has it: a device's primary context retained and
/// current on this thread for the scope.
struct client_context {
  int device;
  CUcontext context = nullptr;

  explicit client_context(int d) : device(d) {
    REQUIRE(standin().primary_retain(&context, device) == CUDA_SUCCESS);
    REQUIRE(standin().ctx_set_current(context) == CUDA_SUCCESS);
  }
  ~client_context() {
    standin().ctx_set_current(nullptr);
    standin().primary_release(device);
  }
  client_context(const client_context&) = delete;
  client_context& operator=(const client_context&) = delete;

  /// What a kernel launched on the default stream does to [address, address + size):
  /// busy until synchronized, then `fill` written over it.
  void launch(cuda::device_ptr address, std::size_t size, int fill) const {
    REQUIRE(standin().launch(nullptr, address, size, fill) == CUDA_SUCCESS);
  }
};

/// This thread's current context.
inline CUcontext current_context() {
  CUcontext now = nullptr;
  REQUIRE(standin().ctx_get_current(&now) == CUDA_SUCCESS);
  return now;
}

} // namespace gpumem::test
