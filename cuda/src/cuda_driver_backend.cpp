#include "gpumem/cuda/cuda_driver_backend.hpp"

#include <cuda.h>

#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "cuda_driver_api.hpp"

// Lifetime contract: the backend must outlive every pinned_buffer and copy_handle it
// returned. Both call back into the driver table, which the backend owns (and
// dlcloses when destroyed).
//
// Contexts are per thread in CUDA, and callers may be on any thread, so every call
// that needs one makes its device's primary context current first (a thread-local
// store, cheap). Calls without a device (the address space is process-wide) use
// device 0's.

namespace gpumem::cuda {

namespace {

std::string hex(std::uintptr_t value) {
  char text[2 + 16 + 1];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

/// A failed driver call as a device_error with CUDA's own code and name; `call`
/// says what was called with which arguments.
device_error driver_error(const driver_api& api, CUresult rc, const std::string& call) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (api.cuGetErrorName(rc, &name) != CUDA_SUCCESS || name == nullptr)
    name = "CUDA_ERROR_UNRECOGNIZED";
  if (api.cuGetErrorString(rc, &text) != CUDA_SUCCESS || text == nullptr)
    text = "unrecognized CUresult";
  return device_error(static_cast<int>(rc), name,
                      call + ": " + text + " (CUresult " + std::to_string(rc) + ")");
}

device_error invalid_value(const std::string& call, const char* why) {
  return device_error(error_code::invalid_value, call + ": " + why);
}

/// Physical memory of one device, as cuMemCreate and the granularity query take it.
CUmemAllocationProp chunk_properties(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

/// One copy: an event recorded on the copy's stream right behind it. Meant for one
/// thread at a time, like any handle.
class event_completion final : public copy_completion {
public:
  event_completion(const driver_api& api, CUcontext context, CUevent event, std::string call)
    : api_(api), context_(context), event_(event), call_(std::move(call)) {}
  ~event_completion() override {
    // The copy runs on if it has not finished; CUDA defers the event's destruction.
    api_.cuCtxSetCurrent(context_);
    api_.cuEventDestroy(event_);
  }
  event_completion(const event_completion&) = delete;
  event_completion& operator=(const event_completion&) = delete;

  bool ready() override {
    if (done_)
      return true;
    api_.cuCtxSetCurrent(context_);
    const CUresult rc = api_.cuEventQuery(event_);
    if (rc == CUDA_ERROR_NOT_READY)
      return false;
    finish(rc);
    return true;
  }

  status wait() override {
    if (!done_) {
      api_.cuCtxSetCurrent(context_);
      finish(api_.cuEventSynchronize(event_));
    }
    if (error_)
      return *error_;
    return {};
  }

private:
  void finish(CUresult rc) {
    done_ = true;
    if (rc != CUDA_SUCCESS)
      error_ = driver_error(api_, rc, call_);
  }

  const driver_api& api_;
  CUcontext context_;
  CUevent event_;
  std::string call_;  // for the error message of an asynchronous failure
  bool done_ = false;
  std::optional<device_error> error_;
};

} // namespace

struct cuda_driver_backend::state {
  struct device_slot {
    CUdevice device = 0;
    CUcontext context = nullptr;  // the retained primary context
    CUstream to_host = nullptr;   // D2H copies, in order
    CUstream to_device = nullptr; // H2D copies, in order; the other direction overlaps
  };

  std::unique_ptr<driver_api> api;
  int device_count = 0;
  std::vector<device_slot> devices;

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;

  // Also undoes a partial open().
  ~state() {
    if (!api)
      return;
    for (device_slot& slot : devices) {
      if (slot.context == nullptr)
        continue;
      api->cuCtxSetCurrent(slot.context);
      if (slot.to_host != nullptr)
        api->cuStreamDestroy(slot.to_host);
      if (slot.to_device != nullptr)
        api->cuStreamDestroy(slot.to_device);
      // Do not leave this thread bound to a context that may be destroyed now.
      api->cuCtxSetCurrent(nullptr);
      api->cuDevicePrimaryCtxRelease(slot.device);
    }
  }

  device_error error(CUresult rc, const std::string& call) const {
    return driver_error(*api, rc, call);
  }

  /// Checks the ordinal and makes the device's context current on this thread.
  status enter(int device, const char* operation) const {
    if (device < 0 || device >= device_count)
      return device_error(error_code::invalid_device,
                          std::string(operation) + "(device " + std::to_string(device) +
                            "): no such device; there are " + std::to_string(device_count) +
                            " CUDA device(s)");
    if (const CUresult rc = api->cuCtxSetCurrent(devices[device].context); rc != CUDA_SUCCESS)
      return error(rc, "cuCtxSetCurrent(device " + std::to_string(device) + ")");
    return {};
  }

  /// Records an event behind the copy just queued on `stream`.
  result<copy_handle> complete(int device, CUstream stream, std::string call) const {
    CUevent event = nullptr;
    if (const CUresult rc = api->cuEventCreate(&event, CU_EVENT_DISABLE_TIMING); rc != CUDA_SUCCESS)
      return error(rc, "cuEventCreate after " + call);
    if (const CUresult rc = api->cuEventRecord(event, stream); rc != CUDA_SUCCESS) {
      api->cuEventDestroy(event);
      return error(rc, "cuEventRecord after " + call);
    }
    return copy_handle(
      std::make_unique<event_completion>(*api, devices[device].context, event, std::move(call)));
  }
};

cuda_driver_backend::cuda_driver_backend(std::unique_ptr<state> s) : state_(std::move(s)) {}

cuda_driver_backend::~cuda_driver_backend() = default;

result<std::unique_ptr<cuda_driver_backend>> cuda_driver_backend::open(const std::string& library) {
  auto api = driver_api::load(library);
  if (!api)
    return api.error();
  auto s = std::make_unique<state>();
  s->api = std::move(api).value();

  // Whatever stops open() stops the whole backend, so every failure names the fallback.
  const auto fail = [&](CUresult rc, const std::string& call) {
    const device_error e = s->error(rc, call);
    return device_error(static_cast<int>(e.code()), e.name(), e.message() + host_backend_hint);
  };
  const driver_api& cu = *s->api;
  if (const CUresult rc = cu.cuInit(0); rc != CUDA_SUCCESS)
    return fail(rc, "cuInit(0)");
  if (const CUresult rc = cu.cuDeviceGetCount(&s->device_count); rc != CUDA_SUCCESS)
    return fail(rc, "cuDeviceGetCount");

  s->devices.resize(static_cast<std::size_t>(s->device_count));
  for (int i = 0; i < s->device_count; ++i) {
    state::device_slot& slot = s->devices[static_cast<std::size_t>(i)];
    const std::string device = "(device " + std::to_string(i) + ")";
    if (const CUresult rc = cu.cuDeviceGet(&slot.device, i); rc != CUDA_SUCCESS)
      return fail(rc, "cuDeviceGet" + device);
    if (const CUresult rc = cu.cuDevicePrimaryCtxRetain(&slot.context, slot.device);
        rc != CUDA_SUCCESS) {
      slot.context = nullptr;
      return fail(rc, "cuDevicePrimaryCtxRetain" + device);
    }
    if (const CUresult rc = cu.cuCtxSetCurrent(slot.context); rc != CUDA_SUCCESS)
      return fail(rc, "cuCtxSetCurrent" + device);
    if (const CUresult rc = cu.cuStreamCreate(&slot.to_host, CU_STREAM_NON_BLOCKING);
        rc != CUDA_SUCCESS)
      return fail(rc, "cuStreamCreate" + device);
    if (const CUresult rc = cu.cuStreamCreate(&slot.to_device, CU_STREAM_NON_BLOCKING);
        rc != CUDA_SUCCESS)
      return fail(rc, "cuStreamCreate" + device);
  }
  return std::unique_ptr<cuda_driver_backend>(new cuda_driver_backend(std::move(s)));
}

result<int> cuda_driver_backend::device_count() {
  return state_->device_count;
}

result<device_properties> cuda_driver_backend::properties(int device) {
  if (status s = state_->enter(device, "properties"); !s)
    return s.error();
  const driver_api& cu = *state_->api;
  const CUdevice dev = state_->devices[device].device;
  const std::string on = "(device " + std::to_string(device) + ")";

  device_properties props;
  props.ordinal = device;
  char name[256] = {};
  if (const CUresult rc = cu.cuDeviceGetName(name, sizeof name, dev); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceGetName" + on);
  props.name = name;
  if (const CUresult rc = cu.cuDeviceTotalMem(&props.total_memory, dev); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceTotalMem" + on);
  int vmm = 0;
  if (const CUresult rc = cu.cuDeviceGetAttribute(
        &vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev);
      rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device " +
                               std::to_string(device) + ")");
  props.vmm_supported = vmm != 0;

  // Without VMM the granularity query fails; such a device is still described.
  if (props.vmm_supported) {
    const CUmemAllocationProp prop = chunk_properties(device);
    if (const CUresult rc = cu.cuMemGetAllocationGranularity(&props.granularity_minimum, &prop,
                                                             CU_MEM_ALLOC_GRANULARITY_MINIMUM);
        rc != CUDA_SUCCESS)
      return state_->error(rc, "cuMemGetAllocationGranularity(MINIMUM, device " +
                                 std::to_string(device) + ")");
    if (const CUresult rc = cu.cuMemGetAllocationGranularity(
          &props.granularity_recommended, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
        rc != CUDA_SUCCESS)
      return state_->error(rc, "cuMemGetAllocationGranularity(RECOMMENDED, device " +
                                 std::to_string(device) + ")");
  }
  return props;
}

result<memory_info> cuda_driver_backend::memory(int device) {
  if (status s = state_->enter(device, "memory"); !s)
    return s.error();
  memory_info info;
  if (const CUresult rc = state_->api->cuMemGetInfo(&info.free, &info.total); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemGetInfo(device " + std::to_string(device) + ")");
  return info;
}

result<device_ptr> cuda_driver_backend::reserve(int device, std::size_t size,
                                                std::size_t alignment) {
  const std::string call = "cuMemAddressReserve(device " + std::to_string(device) + ", size " +
                           std::to_string(size) + ", alignment " + std::to_string(alignment) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  if (status s = state_->enter(device, "reserve"); !s)
    return s.error();
  CUdeviceptr base = 0;
  if (const CUresult rc = state_->api->cuMemAddressReserve(&base, size, alignment, 0, 0);
      rc != CUDA_SUCCESS)
    return state_->error(rc, call);
  return static_cast<device_ptr>(base);
}

status cuda_driver_backend::free_reservation(device_ptr base, std::size_t size) {
  if (status s = state_->enter(0, "free_reservation"); !s)
    return s;
  if (const CUresult rc = state_->api->cuMemAddressFree(base, size); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemAddressFree(" + hex(base) + ", size " + std::to_string(size) + ")");
  return {};
}

result<chunk_handle> cuda_driver_backend::create_chunk(int device, std::size_t size) {
  const std::string call =
    "cuMemCreate(device " + std::to_string(device) + ", size " + std::to_string(size) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  if (status s = state_->enter(device, "create_chunk"); !s)
    return s.error();
  const CUmemAllocationProp prop = chunk_properties(device);
  CUmemGenericAllocationHandle handle = 0;
  if (const CUresult rc = state_->api->cuMemCreate(&handle, size, &prop, 0); rc != CUDA_SUCCESS)
    return state_->error(rc, call);
  return static_cast<chunk_handle>(handle);
}

status cuda_driver_backend::release_chunk(chunk_handle chunk) {
  if (status s = state_->enter(0, "release_chunk"); !s)
    return s;
  if (const CUresult rc = state_->api->cuMemRelease(chunk); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemRelease(chunk " + hex(chunk) + ")");
  return {};
}

status cuda_driver_backend::map(device_ptr address, std::size_t size, chunk_handle chunk,
                                std::size_t offset) {
  if (status s = state_->enter(0, "map"); !s)
    return s;
  if (const CUresult rc = state_->api->cuMemMap(address, size, offset, chunk, 0); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemMap(" + hex(address) + ", size " + std::to_string(size) +
                               ", offset " + std::to_string(offset) + ", chunk " + hex(chunk) + ")");
  return {};
}

status cuda_driver_backend::unmap(device_ptr address, std::size_t size) {
  if (status s = state_->enter(0, "unmap"); !s)
    return s;
  if (const CUresult rc = state_->api->cuMemUnmap(address, size); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemUnmap(" + hex(address) + ", size " + std::to_string(size) + ")");
  return {};
}

status cuda_driver_backend::set_access(int device, device_ptr address, std::size_t size) {
  if (status s = state_->enter(device, "set_access"); !s)
    return s;
  CUmemAccessDesc access{};
  access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  access.location.id = device;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if (const CUresult rc = state_->api->cuMemSetAccess(address, size, &access, 1); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuMemSetAccess(device " + std::to_string(device) + ", " +
                               hex(address) + ", size " + std::to_string(size) + ")");
  return {};
}

result<pinned_buffer> cuda_driver_backend::allocate_pinned(std::size_t size) {
  const std::string call = "cuMemHostAlloc(size " + std::to_string(size) + ", PORTABLE)";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  // Portable: usable by every context, so device 0's serves to allocate it.
  if (status s = state_->enter(0, "allocate_pinned"); !s)
    return s.error();
  void* data = nullptr;
  if (const CUresult rc = state_->api->cuMemHostAlloc(&data, size, CU_MEMHOSTALLOC_PORTABLE);
      rc != CUDA_SUCCESS)
    return state_->error(rc, call);
  // Raw pointers: the table and the context live as long as the backend, which
  // must outlive its buffers.
  const driver_api* api = state_->api.get();
  const CUcontext context = state_->devices[0].context;
  return pinned_buffer(data, size, [api, context](void* p, std::size_t) {
    api->cuCtxSetCurrent(context);
    api->cuMemFreeHost(p);
  });
}

result<copy_handle> cuda_driver_backend::copy_to_host_async(int device, void* dst, device_ptr src,
                                                            std::size_t size) {
  std::string call = "cuMemcpyDtoHAsync(device " + std::to_string(device) + ", dst " +
                     hex(reinterpret_cast<std::uintptr_t>(dst)) + ", src " + hex(src) + ", size " +
                     std::to_string(size) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  if (status s = state_->enter(device, "copy_to_host_async"); !s)
    return s.error();
  const CUstream stream = state_->devices[device].to_host;
  if (const CUresult rc = state_->api->cuMemcpyDtoHAsync(dst, src, size, stream); rc != CUDA_SUCCESS)
    return state_->error(rc, call);
  return state_->complete(device, stream, std::move(call));
}

result<copy_handle> cuda_driver_backend::copy_to_device_async(int device, device_ptr dst,
                                                              const void* src, std::size_t size) {
  std::string call = "cuMemcpyHtoDAsync(device " + std::to_string(device) + ", dst " + hex(dst) +
                     ", src " + hex(reinterpret_cast<std::uintptr_t>(src)) + ", size " +
                     std::to_string(size) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  if (status s = state_->enter(device, "copy_to_device_async"); !s)
    return s.error();
  const CUstream stream = state_->devices[device].to_device;
  if (const CUresult rc = state_->api->cuMemcpyHtoDAsync(dst, src, size, stream); rc != CUDA_SUCCESS)
    return state_->error(rc, call);
  return state_->complete(device, stream, std::move(call));
}

} // namespace gpumem::cuda
