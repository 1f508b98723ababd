#pragma once
// The CUDA driver's entry points, resolved at run time.
//
// Nothing links against libcuda: the library is dlopen'ed and every entry point is
// fetched through cuGetProcAddress, so one binary runs with and without a driver.
// Member types are cuda.h's own declarations. cuda.h's macros rename some members
// (cuMemGetInfo becomes cuMemGetInfo_v2), the same way wherever this header is seen.
//
// Entry points are asked for at min(CUDA_VERSION, the driver's version): a driver
// refuses versions newer than itself. Every function here has had its current ABI
// since CUDA 11.0, and a driver old enough to lack cuGetProcAddress (< 11.3) is
// refused, so the types below match whatever the driver hands back.

#include <cuda.h>

#include <memory>
#include <string>

#include "gpumem/cuda/device_error.hpp"

namespace gpumem::cuda {

/// Appended to every "cannot use the driver" message.
inline constexpr const char* host_backend_hint = "; use the host backend (--backend host)";

class driver_api {
public:
  /// Loads `library` and resolves every entry point below. A missing library or
  /// entry point is driver_unavailable, in one line that names the host backend.
  static result<std::unique_ptr<driver_api>> load(const std::string& library);

  // Never dlclose'd: after cuInit the driver runs threads and registers handlers in
  // the process, and unloading it under them is undefined (RTLD_NODELETE besides).
  ~driver_api() = default;
  driver_api(const driver_api&) = delete;
  driver_api& operator=(const driver_api&) = delete;

  /// The driver's CUDA version (cuDriverGetVersion), e.g. 12040.
  int driver_version() const noexcept { return driver_version_; }

  decltype(&::cuInit) cuInit = nullptr;
  decltype(&::cuDriverGetVersion) cuDriverGetVersion = nullptr;
  decltype(&::cuDeviceGetCount) cuDeviceGetCount = nullptr;
  decltype(&::cuDeviceGet) cuDeviceGet = nullptr;
  decltype(&::cuDeviceGetName) cuDeviceGetName = nullptr;
  decltype(&::cuDeviceTotalMem) cuDeviceTotalMem = nullptr;
  decltype(&::cuDeviceGetAttribute) cuDeviceGetAttribute = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) cuDevicePrimaryCtxRetain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) cuDevicePrimaryCtxRelease = nullptr;
  decltype(&::cuDeviceCanAccessPeer) cuDeviceCanAccessPeer = nullptr;
  decltype(&::cuCtxSetCurrent) cuCtxSetCurrent = nullptr;
  decltype(&::cuCtxGetCurrent) cuCtxGetCurrent = nullptr;
  decltype(&::cuCtxSynchronize) cuCtxSynchronize = nullptr;
  decltype(&::cuMemGetInfo) cuMemGetInfo = nullptr;
  decltype(&::cuMemGetAllocationGranularity) cuMemGetAllocationGranularity = nullptr;
  decltype(&::cuMemAddressReserve) cuMemAddressReserve = nullptr;
  decltype(&::cuMemAddressFree) cuMemAddressFree = nullptr;
  decltype(&::cuMemCreate) cuMemCreate = nullptr;
  decltype(&::cuMemRelease) cuMemRelease = nullptr;
  decltype(&::cuMemMap) cuMemMap = nullptr;
  decltype(&::cuMemUnmap) cuMemUnmap = nullptr;
  decltype(&::cuMemSetAccess) cuMemSetAccess = nullptr;
  decltype(&::cuMemHostAlloc) cuMemHostAlloc = nullptr;
  decltype(&::cuMemFreeHost) cuMemFreeHost = nullptr;
  decltype(&::cuStreamCreate) cuStreamCreate = nullptr;
  decltype(&::cuStreamDestroy) cuStreamDestroy = nullptr;
  decltype(&::cuStreamSynchronize) cuStreamSynchronize = nullptr;
  decltype(&::cuEventCreate) cuEventCreate = nullptr;
  decltype(&::cuEventDestroy) cuEventDestroy = nullptr;
  decltype(&::cuEventRecord) cuEventRecord = nullptr;
  decltype(&::cuEventQuery) cuEventQuery = nullptr;
  decltype(&::cuEventSynchronize) cuEventSynchronize = nullptr;
  decltype(&::cuMemcpyDtoHAsync) cuMemcpyDtoHAsync = nullptr;
  decltype(&::cuMemcpyHtoDAsync) cuMemcpyHtoDAsync = nullptr;
  decltype(&::cuGetErrorName) cuGetErrorName = nullptr;
  decltype(&::cuGetErrorString) cuGetErrorString = nullptr;

private:
  driver_api() = default;

  void* library_ = nullptr;
  int driver_version_ = 0;
};

} // namespace gpumem::cuda
