// The stand-in's lookup table (cuGetProcAddress), error names and test hooks.

#include <cstring>

#include "cuda_standin.h"
#include "standin_state.hpp"

using namespace gpumem::standin;

namespace {

struct entry {
  const char* name;
  void* address;
};

// #name is the name callers ask for; &name is what cuda.h's macros make of it (_v2).
#define GPUMEM_STANDIN_ENTRY(name) entry{#name, reinterpret_cast<void*>(&name)}

const entry* find_entry(const char* symbol) {
  static const entry table[] = {
    GPUMEM_STANDIN_ENTRY(cuInit),
    GPUMEM_STANDIN_ENTRY(cuDriverGetVersion),
    GPUMEM_STANDIN_ENTRY(cuDeviceGetCount),
    GPUMEM_STANDIN_ENTRY(cuDeviceGet),
    GPUMEM_STANDIN_ENTRY(cuDeviceGetName),
    GPUMEM_STANDIN_ENTRY(cuDeviceTotalMem),
    GPUMEM_STANDIN_ENTRY(cuDeviceGetAttribute),
    GPUMEM_STANDIN_ENTRY(cuDeviceCanAccessPeer),
    GPUMEM_STANDIN_ENTRY(cuDevicePrimaryCtxRetain),
    GPUMEM_STANDIN_ENTRY(cuDevicePrimaryCtxRelease),
    GPUMEM_STANDIN_ENTRY(cuDevicePrimaryCtxGetState),
    GPUMEM_STANDIN_ENTRY(cuCtxSetCurrent),
    GPUMEM_STANDIN_ENTRY(cuCtxGetCurrent),
    GPUMEM_STANDIN_ENTRY(cuCtxSynchronize),
    GPUMEM_STANDIN_ENTRY(cuMemGetInfo),
    GPUMEM_STANDIN_ENTRY(cuMemGetAllocationGranularity),
    GPUMEM_STANDIN_ENTRY(cuMemAddressReserve),
    GPUMEM_STANDIN_ENTRY(cuMemAddressFree),
    GPUMEM_STANDIN_ENTRY(cuMemCreate),
    GPUMEM_STANDIN_ENTRY(cuMemGetAllocationPropertiesFromHandle),
    GPUMEM_STANDIN_ENTRY(cuMemRelease),
    GPUMEM_STANDIN_ENTRY(cuMemMap),
    GPUMEM_STANDIN_ENTRY(cuMemUnmap),
    GPUMEM_STANDIN_ENTRY(cuMemSetAccess),
    GPUMEM_STANDIN_ENTRY(cuMemGetAccess),
    GPUMEM_STANDIN_ENTRY(cuMemHostAlloc),
    GPUMEM_STANDIN_ENTRY(cuMemFreeHost),
    GPUMEM_STANDIN_ENTRY(cuStreamCreate),
    GPUMEM_STANDIN_ENTRY(cuStreamDestroy),
    GPUMEM_STANDIN_ENTRY(cuStreamSynchronize),
    GPUMEM_STANDIN_ENTRY(cuEventCreate),
    GPUMEM_STANDIN_ENTRY(cuEventDestroy),
    GPUMEM_STANDIN_ENTRY(cuEventRecord),
    GPUMEM_STANDIN_ENTRY(cuEventQuery),
    GPUMEM_STANDIN_ENTRY(cuEventSynchronize),
    GPUMEM_STANDIN_ENTRY(cuMemcpyDtoHAsync),
    GPUMEM_STANDIN_ENTRY(cuMemcpyHtoDAsync),
    GPUMEM_STANDIN_ENTRY(cuGetErrorName),
    GPUMEM_STANDIN_ENTRY(cuGetErrorString),
  };
  for (const entry& e : table)
    if (std::strcmp(e.name, symbol) == 0)
      return &e;
  return nullptr;
}

struct error_text {
  CUresult code;
  const char* name;
  const char* text;
};

const error_text* find_error(CUresult code) {
  static const error_text table[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE",
     "CUDA-capable device(s) is/are busy or unavailable"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
    {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS",
     "an illegal memory access was encountered"},
    {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {CUDA_ERROR_CONTEXT_IS_DESTROYED, "CUDA_ERROR_CONTEXT_IS_DESTROYED",
     "context is destroyed"},
    {CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE",
     "primary context active"},
    {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
    {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
  };
  for (const error_text& e : table)
    if (e.code == code)
      return &e;
  return nullptr;
}

} // namespace

extern "C" {

CUresult cuGetProcAddress(const char* symbol, void** pfn, int, cuuint64_t,
                          CUdriverProcAddressQueryResult* status) {
  if (symbol == nullptr || pfn == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  const entry* e = find_entry(symbol);
  *pfn = e != nullptr ? e->address : nullptr;
  if (status != nullptr)
    *status = e != nullptr ? CU_GET_PROC_ADDRESS_SUCCESS : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  return e != nullptr ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetErrorName(CUresult code, const char** name) {
  const error_text* e = find_error(code);
  if (name == nullptr || e == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *name = e->name;
  return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult code, const char** text) {
  const error_text* e = find_error(code);
  if (text == nullptr || e == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *text = e->text;
  return CUDA_SUCCESS;
}

CUresult gpumemStandinInjectCopyFault(CUresult code) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  d.copy_fault = code;
  return CUDA_SUCCESS;
}

CUresult gpumemStandinFailNextEventRecord(CUresult code) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  d.event_record_fault = code;
  return CUDA_SUCCESS;
}

CUresult gpumemStandinHoldCopies(int hold) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  d.hold_copies = hold != 0;
  d.work.notify_all();
  return CUDA_SUCCESS;
}

CUresult gpumemStandinSetUnavailable(int device, int unavailable) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (device < 0 || static_cast<std::size_t>(device) >= d.devices.size())
    return CUDA_ERROR_INVALID_DEVICE;
  d.devices[static_cast<std::size_t>(device)]->unavailable = unavailable != 0;
  return CUDA_SUCCESS;
}

unsigned long long gpumemStandinContextCalls(void) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  return d.context_calls;
}

CUresult gpumemStandinReset(void) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  for (auto& dev : d.devices)
    if (dev->primary.retains > 0)
      return CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE;
  for (auto& dev : d.devices) {
    dev->primary.sticky = CUDA_SUCCESS;
    dev->unavailable = false;
  }
  d.copy_fault = CUDA_SUCCESS;
  d.event_record_fault = CUDA_SUCCESS;
  d.hold_copies = false;
  return CUDA_SUCCESS;
}

} // extern "C"
