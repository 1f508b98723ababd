#include "cuda_driver_api.hpp"

#include <dlfcn.h>

#include <algorithm>

namespace gpumem::cuda {

namespace {

// cuGetProcAddress as CUDA 12 exports it (_v2), and as CUDA 11.3 did.
using get_proc_v2_fn = CUresult (*)(const char*, void**, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult*);
using get_proc_v1_fn = CUresult (*)(const char*, void**, int, cuuint64_t);

// The oldest version any driver with cuGetProcAddress accepts.
constexpr int first_get_proc_version = 11030;

device_error unavailable(const std::string& why) {
  return device_error(error_code::driver_unavailable,
                      "CUDA driver not available: " + why + host_backend_hint);
}

// dlerror() text can in principle span lines; the message must not.
std::string one_line(const char* text) {
  std::string line = text != nullptr ? text : "unknown dlopen error";
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line;
}

std::string version_text(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

// Whichever cuGetProcAddress the driver has, behind one call.
struct proc_lookup {
  get_proc_v2_fn v2 = nullptr;
  get_proc_v1_fn v1 = nullptr;
  const std::string* library = nullptr;

  template <class Fn>
  status operator()(const char* symbol, int version, Fn& fn) const {
    void* address = nullptr;
    CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SUCCESS;
    const CUresult rc = v2 != nullptr
      ? v2(symbol, &address, version, CU_GET_PROC_ADDRESS_DEFAULT, &found)
      : v1(symbol, &address, version, CU_GET_PROC_ADDRESS_DEFAULT);
    if (rc != CUDA_SUCCESS || address == nullptr) {
      const std::string why = rc != CUDA_SUCCESS
        ? "cuGetProcAddress returned CUresult " + std::to_string(rc)
        : found == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT ? "needs a newer CUDA version"
                                                              : "symbol not found";
      return unavailable(*library + " has no " + symbol + " for CUDA " + version_text(version) +
                         " (" + why + ")");
    }
    // POSIX guarantees data and function pointers convert both ways.
    fn = reinterpret_cast<Fn>(address);
    return {};
  }
};

} // namespace

result<std::unique_ptr<driver_api>> driver_api::load(const std::string& library) {
  std::unique_ptr<driver_api> api(new driver_api);
  api->library_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->library_ == nullptr)
    return unavailable("cannot load " + library + " (" + one_line(dlerror()) + ")");

  proc_lookup lookup;
  lookup.library = &library;
  if (void* v2 = dlsym(api->library_, "cuGetProcAddress_v2"))
    lookup.v2 = reinterpret_cast<get_proc_v2_fn>(v2);
  else if (void* v1 = dlsym(api->library_, "cuGetProcAddress"))
    lookup.v1 = reinterpret_cast<get_proc_v1_fn>(v1);
  else
    return unavailable(library + " has no cuGetProcAddress (a driver for CUDA 11.3 or newer is needed)");

  // Ask for no newer version than the driver knows: it would refuse every lookup.
  if (status s = lookup("cuDriverGetVersion", first_get_proc_version, api->cuDriverGetVersion); !s)
    return s.error();
  if (const CUresult rc = api->cuDriverGetVersion(&api->driver_version_); rc != CUDA_SUCCESS)
    return unavailable(library + ": cuDriverGetVersion failed (CUresult " + std::to_string(rc) + ")");
  const int version = std::min(CUDA_VERSION, std::max(api->driver_version_, first_get_proc_version));

  status s;
  const auto get = [&](const char* symbol, auto& fn) {
    if (s)
      s = lookup(symbol, version, fn);
  };
  get("cuInit", api->cuInit);
  get("cuDeviceGetCount", api->cuDeviceGetCount);
  get("cuDeviceGet", api->cuDeviceGet);
  get("cuDeviceGetName", api->cuDeviceGetName);
  get("cuDeviceTotalMem", api->cuDeviceTotalMem);  // the _v2 (size_t) one at this version
  get("cuDeviceGetAttribute", api->cuDeviceGetAttribute);
  get("cuDevicePrimaryCtxRetain", api->cuDevicePrimaryCtxRetain);
  get("cuDevicePrimaryCtxRelease", api->cuDevicePrimaryCtxRelease);
  get("cuDeviceCanAccessPeer", api->cuDeviceCanAccessPeer);
  get("cuCtxSetCurrent", api->cuCtxSetCurrent);
  get("cuCtxGetCurrent", api->cuCtxGetCurrent);
  get("cuCtxSynchronize", api->cuCtxSynchronize);
  get("cuMemGetInfo", api->cuMemGetInfo);
  get("cuMemGetAllocationGranularity", api->cuMemGetAllocationGranularity);
  get("cuMemAddressReserve", api->cuMemAddressReserve);
  get("cuMemAddressFree", api->cuMemAddressFree);
  get("cuMemCreate", api->cuMemCreate);
  get("cuMemRelease", api->cuMemRelease);
  get("cuMemMap", api->cuMemMap);
  get("cuMemUnmap", api->cuMemUnmap);
  get("cuMemSetAccess", api->cuMemSetAccess);
  get("cuMemHostAlloc", api->cuMemHostAlloc);
  get("cuMemFreeHost", api->cuMemFreeHost);
  get("cuStreamCreate", api->cuStreamCreate);
  get("cuStreamDestroy", api->cuStreamDestroy);
  get("cuStreamSynchronize", api->cuStreamSynchronize);
  get("cuEventCreate", api->cuEventCreate);
  get("cuEventDestroy", api->cuEventDestroy);
  get("cuEventRecord", api->cuEventRecord);
  get("cuEventQuery", api->cuEventQuery);
  get("cuEventSynchronize", api->cuEventSynchronize);
  get("cuMemcpyDtoHAsync", api->cuMemcpyDtoHAsync);
  get("cuMemcpyHtoDAsync", api->cuMemcpyHtoDAsync);
  get("cuGetErrorName", api->cuGetErrorName);
  get("cuGetErrorString", api->cuGetErrorString);
  if (!s)
    return s.error();
  return api;
}

} // namespace gpumem::cuda
