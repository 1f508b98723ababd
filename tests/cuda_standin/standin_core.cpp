// The stand-in's core: state, contexts, the rules every call shares, the worker that
// runs streams, and device and context entry points.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda_standin.h"
#include "standin_state.hpp"

namespace gpumem::standin {

driver& driver::get() {
  // Never destroyed: the worker and late callers may run during process exit.
  static driver* d = new driver;
  return *d;
}

CUctx_st*& current() {
  thread_local CUctx_st* context = nullptr;
  return context;
}

bool is_sticky(CUresult rc) {
  switch (rc) {
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_CONTAINED:
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_TENSOR_MEMORY_LEAK:
      return true;
    default:
      return false;
  }
}

void undefined_behaviour(const std::string& what) {
  std::fprintf(stderr, "cuda stand-in: undefined behaviour in the real driver: %s\n", what.c_str());
  std::abort();
}

CUresult enter(driver& d, CUctx_st*& context) {
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  ++d.context_calls;
  context = current();
  if (context == nullptr)
    return CUDA_ERROR_INVALID_CONTEXT;
  if (context->retains == 0)
    return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  return context->sticky;
}

CUresult poison(CUctx_st* context, CUresult rc) {
  if (context->sticky == CUDA_SUCCESS)
    context->sticky = rc;
  return context->sticky;
}

void flush(driver& d, std::unique_lock<std::mutex>& lock, CUstream_st* stream) {
  ++stream->flushing;
  d.work.notify_all();
  d.done.wait(lock, [&] { return stream->ops.empty(); });
  --stream->flushing;
}

const op* busy_kernel(driver& d, CUdeviceptr address, std::size_t size, CUctx_st** owner) {
  for (auto& s : d.all_streams)
    for (const op& o : s->ops)
      if (o.kind == op::kernel && o.device_address < address + size &&
          address < o.device_address + o.size) {
        *owner = s->context;
        return &o;
      }
  return nullptr;
}

bool accessible(driver& d, CUdeviceptr address, std::size_t size, int device) {
  auto it = d.mappings.upper_bound(address);
  if (it == d.mappings.begin())
    return false;
  --it;
  CUdeviceptr next = address;
  while (next < address + size) {
    if (it == d.mappings.end() || it->first > next || it->first + it->second.size <= next ||
        !it->second.access.count(device))
      return false;
    next = it->first + it->second.size;
    ++it;
  }
  return true;
}

namespace {

/// Under the lock: runs one op of a stream; false if it must wait.
bool run(driver& d, CUstream_st* s, op& o) {
  CUctx_st* ctx = s->context;
  if (ctx->sticky != CUDA_SUCCESS) {  // a dead context runs nothing, and ends everything
    if (o.kind == op::event)
      --o.recorded->pending;
    return true;
  }
  switch (o.kind) {
    case op::kernel:
      if (s->flushing == 0)
        return false;
      if (o.fill >= 0 && accessible(d, o.device_address, o.size, ctx->device))
        std::memset(reinterpret_cast<void*>(o.device_address), o.fill, o.size);
      return true;
    case op::event:
      --o.recorded->pending;
      return true;
    case op::to_host:
    case op::to_device:
      if (d.hold_copies && s->flushing == 0)
        return false;
      if (d.copy_fault != CUDA_SUCCESS) {
        const CUresult fault = d.copy_fault;
        d.copy_fault = CUDA_SUCCESS;
        if (is_sticky(fault))
          poison(ctx, fault);
        return true;
      }
      if (!accessible(d, o.device_address, o.size, ctx->device)) {
        poison(ctx, CUDA_ERROR_ILLEGAL_ADDRESS);  // the GPU faults on the address
        return true;
      }
      if (o.kind == op::to_host)
        std::memcpy(o.host, reinterpret_cast<const void*>(o.device_address), o.size);
      else
        std::memcpy(reinterpret_cast<void*>(o.device_address), o.host, o.size);
      return true;
  }
  return true;
}

void work(driver& d) {
  std::unique_lock lock(d.mutex);
  for (;;) {
    bool progress = false;
    for (std::size_t i = 0; i < d.all_streams.size(); ++i) {
      CUstream_st* s = d.all_streams[i].get();
      while (!s->ops.empty() && run(d, s, s->ops.front())) {
        s->ops.pop_front();
        progress = true;
      }
    }
    if (progress)
      d.done.notify_all();
    else
      d.work.wait(lock);
  }
}

} // namespace

void start_worker(driver& d) {
  if (!d.worker.joinable()) {
    d.worker = std::thread(work, std::ref(d));
    d.worker.detach();  // lives as long as the process, as the driver's threads do
  }
}

void destroy_context(driver& d, CUctx_st* context) {
  for (CUstream_st* s : context->streams) {
    for (op& o : s->ops)
      if (o.kind == op::event)
        --o.recorded->pending;
    s->ops.clear();
    if (s != context->null_stream)
      s->destroyed = true;
  }
  context->streams.erase(std::remove_if(context->streams.begin(), context->streams.end(),
                                        [&](CUstream_st* s) { return s != context->null_stream; }),
                         context->streams.end());
  for (auto it = d.pinned_memory.begin(); it != d.pinned_memory.end();) {
    if (it->second.context == context) {
      munmap(it->first, it->second.size);
      d.died_with_context.insert(it->first);
      it = d.pinned_memory.erase(it);
    } else {
      ++it;
    }
  }
  d.done.notify_all();
}

} // namespace gpumem::standin

using namespace gpumem::standin;

namespace {

std::size_t env_number(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0')
    return fallback;
  return static_cast<std::size_t>(std::strtoull(text, nullptr, 10));
}

/// Checks initialization and the ordinal; the device or nullptr.
device* find_device(driver& d, CUdevice dev) {
  if (!d.initialized || dev < 0 || static_cast<std::size_t>(dev) >= d.devices.size())
    return nullptr;
  return d.devices[static_cast<std::size_t>(dev)].get();
}

} // namespace

extern "C" {

CUresult cuInit(unsigned int flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (d.initialized)
    return CUDA_SUCCESS;
  const std::size_t count = env_number("GPUMEM_STANDIN_DEVICES", 2);
  const std::size_t bytes = env_number("GPUMEM_STANDIN_DEVICE_MIB", 1024) << 20;
  for (std::size_t i = 0; i < count; ++i) {
    auto dev = std::make_unique<device>();
    dev->name = "gpumem CUDA stand-in " + std::to_string(i);
    dev->total = bytes;
    dev->primary.device = static_cast<int>(i);
    d.all_streams.push_back(std::make_unique<CUstream_st>());
    dev->primary.null_stream = d.all_streams.back().get();
    dev->primary.null_stream->context = &dev->primary;
    dev->primary.streams.push_back(dev->primary.null_stream);
    d.devices.push_back(std::move(dev));
  }
  d.initialized = true;
  start_worker(d);
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *version = CUDA_VERSION;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (count == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(d.devices.size());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* dev, int ordinal) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (dev == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  if (find_device(d, ordinal) == nullptr)
    return CUDA_ERROR_INVALID_DEVICE;
  *dev = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  device* found = find_device(d, dev);
  if (found == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (name == nullptr || len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  std::snprintf(name, static_cast<std::size_t>(len), "%s", found->name.c_str());
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t* bytes, CUdevice dev) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  device* found = find_device(d, dev);
  if (found == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (bytes == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *bytes = found->total;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice dev) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (find_device(d, dev) == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (value == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
      *value = 1;
      break;
    default:
      *value = 0;
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceCanAccessPeer(int* can, CUdevice dev, CUdevice peer) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (find_device(d, dev) == nullptr || find_device(d, peer) == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (can == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *can = dev != peer ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice dev) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  device* found = find_device(d, dev);
  if (found == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (context == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  if (found->unavailable)
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
  ++found->primary.retains;
  *context = &found->primary;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  device* found = find_device(d, dev);
  if (found == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (found->primary.retains == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  if (--found->primary.retains == 0)
    destroy_context(d, &found->primary);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  device* found = find_device(d, dev);
  if (found == nullptr)
    return d.initialized ? CUDA_ERROR_INVALID_DEVICE : CUDA_ERROR_NOT_INITIALIZED;
  if (flags == nullptr || active == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *flags = 0;
  *active = found->primary.retains > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext context) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (context != nullptr) {
    bool known = false;
    for (auto& dev : d.devices)
      known = known || context == &dev->primary;
    if (!known)
      return CUDA_ERROR_INVALID_CONTEXT;
  }
  current() = context;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* context) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (context == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  *context = current();
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() {
  driver& d = driver::get();
  std::unique_lock lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  for (std::size_t i = 0; i < ctx->streams.size(); ++i)
    flush(d, lock, ctx->streams[i]);
  return ctx->sticky;
}

} // extern "C"
