#include "gpumem/cuda/cuda_driver_backend.hpp"

#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cuda_driver_api.hpp"

// Contexts: CUDA's current context is per thread and belongs to the caller (PyTorch
// keeps its device's primary context there). Every driver call below runs inside a
// context_scope, which makes the owning device's primary context current and puts
// back whatever the thread had. Primary contexts are retained on a device's first use.
//
// Lifetime: pinned buffers and copy handles share the state (driver table, contexts),
// so one that outlives the backend still frees through a live context.

namespace gpumem::cuda {

std::string default_driver_library() {
  const char* chosen = std::getenv("GPUMEM_CUDA_LIBRARY");
  return chosen != nullptr && *chosen != '\0' ? chosen : "libcuda.so.1";
}

namespace {

std::string hex(std::uintptr_t value) {
  char text[2 + 16 + 1];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string on(int device) { return "(device " + std::to_string(device) + ")"; }

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

/// Makes a context current on this thread for a scope, then restores the caller's.
class context_scope {
public:
  context_scope(const driver_api& api, CUcontext context) : api_(api) {
    if (api_.cuCtxGetCurrent(&previous_) != CUDA_SUCCESS)
      previous_ = nullptr;
    if (previous_ != context) {
      rc_ = api_.cuCtxSetCurrent(context);
      switched_ = rc_ == CUDA_SUCCESS;
    }
  }
  ~context_scope() {
    if (switched_)
      api_.cuCtxSetCurrent(previous_);
  }
  context_scope(const context_scope&) = delete;
  context_scope& operator=(const context_scope&) = delete;

  CUresult rc() const noexcept { return rc_; }

private:
  const driver_api& api_;
  CUcontext previous_ = nullptr;
  CUresult rc_ = CUDA_SUCCESS;
  bool switched_ = false;
};

} // namespace

struct cuda_driver_backend::state {
  struct device_slot {
    CUdevice device = 0;
    CUcontext context = nullptr;  // the primary context, retained on first use
    CUstream to_host = nullptr;   // D2H copies, in order
    CUstream to_device = nullptr; // H2D copies, in order; the other direction overlaps
    bool exportable = false;      // chunks ask for POSIX file descriptor handles
    bool rdma_capable = false;    // chunks ask for GPUDirect RDMA
    std::vector<int> peers;       // granted access besides the owner (peer_access)
    std::optional<device_error> lost;  // the sticky error that ended this device
  };

  std::unique_ptr<driver_api> api;
  cuda_backend_options options;
  int device_count = 0;
  std::vector<device_slot> devices;  // sized once by open(): slots never move

  mutable std::mutex mutex;  // guards contexts, streams, lost and the owner maps
  std::map<device_ptr, std::pair<std::size_t, int>> reservations;  // base -> size, device
  std::unordered_map<chunk_handle, int> chunks;                     // -> device

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;

  ~state() {
    if (!api)
      return;
    for (device_slot& slot : devices) {
      if (slot.context == nullptr)
        continue;
      {
        context_scope scope(*api, slot.context);
        if (slot.to_host != nullptr)
          api->cuStreamDestroy(slot.to_host);
        if (slot.to_device != nullptr)
          api->cuStreamDestroy(slot.to_device);
      }
      api->cuDevicePrimaryCtxRelease(slot.device);
    }
  }

  device_error error(CUresult rc, const std::string& call) const {
    return driver_error(*api, rc, call);
  }

  /// A failed call on `device`; a sticky error ends the device for good.
  device_error fail(int device, CUresult rc, const std::string& call) {
    device_error e = error(rc, call);
    if (is_sticky(e.code())) {
      std::lock_guard lock(mutex);
      device_slot& slot = devices[static_cast<std::size_t>(device)];
      if (!slot.lost) {
        slot.lost = e;
        std::fprintf(stderr,
                     "gpumem: CUDA device %d is lost (%s); no more calls go to it, restart the "
                     "process to use it again\n",
                     device, e.to_string().c_str());
      }
    }
    return e;
  }

  std::optional<device_error> refusal(const device_slot& slot, int device,
                                      const char* operation) const {
    if (!slot.lost)
      return std::nullopt;
    return device_error(static_cast<int>(slot.lost->code()), slot.lost->name(),
                        std::string(operation) + on(device) +
                          ": the device is lost since a sticky CUDA error, and gpumem makes "
                          "no more driver calls for it (restart the process): " +
                          slot.lost->message());
  }

  /// The device's slot, its primary context retained and streams made on first use;
  /// or why it cannot be used (no such device, lost, the driver refused).
  result<device_slot*> slot(int device, const char* operation) {
    if (device < 0 || device >= device_count)
      return device_error(error_code::invalid_device,
                          std::string(operation) + on(device) + ": no such device; there are " +
                            std::to_string(device_count) + " CUDA device(s)");
    std::lock_guard lock(mutex);
    device_slot& s = devices[static_cast<std::size_t>(device)];
    if (auto refused = refusal(s, device, operation))
      return *refused;
    if (s.context != nullptr)
      return &s;
    CUcontext context = nullptr;
    if (const CUresult rc = api->cuDevicePrimaryCtxRetain(&context, s.device); rc != CUDA_SUCCESS)
      return error(rc, "cuDevicePrimaryCtxRetain" + on(device));
    context_scope scope(*api, context);
    CUresult rc = scope.rc();
    const char* failed = "cuCtxSetCurrent";
    if (rc == CUDA_SUCCESS && (rc = api->cuStreamCreate(&s.to_host, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS)
      failed = "cuStreamCreate";
    if (rc == CUDA_SUCCESS && (rc = api->cuStreamCreate(&s.to_device, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS)
      failed = "cuStreamCreate";
    if (rc != CUDA_SUCCESS) {
      if (s.to_host != nullptr)
        api->cuStreamDestroy(s.to_host);
      s.to_host = nullptr;
      api->cuDevicePrimaryCtxRelease(s.device);
      return error(rc, failed + on(device));
    }
    s.context = context;
    return &s;
  }

  /// Runs `call(slot)` (a CUresult) in `device`'s context; `describe()` names the call
  /// for the error.
  template <class Describe, class Call>
  status in_context(int device, const char* operation, Describe describe, Call call) {
    auto s = slot(device, operation);
    if (!s)
      return s.error();
    context_scope scope(*api, (*s)->context);
    if (scope.rc() != CUDA_SUCCESS)
      return fail(device, scope.rc(), "cuCtxSetCurrent" + on(device));
    if (const CUresult rc = call(**s); rc != CUDA_SUCCESS)
      return fail(device, rc, describe());
    return {};
  }

  /// The device whose reservation holds `address`.
  result<int> owner_of(device_ptr address, const std::string& call) const {
    std::lock_guard lock(mutex);
    auto it = reservations.upper_bound(address);
    if (it == reservations.begin() || address >= std::prev(it)->first + std::prev(it)->second.first)
      return invalid_value(call, "the address is in no reservation of this backend");
    return std::prev(it)->second.second;
  }

  result<int> owner_of_chunk(chunk_handle chunk, const std::string& call) const {
    std::lock_guard lock(mutex);
    auto it = chunks.find(chunk);
    if (it == chunks.end())  // 0 or released: the driver's behaviour is undefined
      return invalid_value(call, "not a live chunk of this backend");
    return it->second;
  }
};

namespace {

using state_ptr = std::shared_ptr<cuda_driver_backend::state>;

/// One copy: an event recorded on the copy's stream right behind it. Meant for one
/// thread at a time, like any handle.
class event_completion final : public copy_completion {
public:
  event_completion(state_ptr s, int device, CUevent event, std::string call)
    : state_(std::move(s)), device_(device), event_(event), call_(std::move(call)) {}
  ~event_completion() override {
    // The copy runs on if it has not finished; CUDA defers the event's destruction.
    (void)state_->in_context(device_, "~copy", [] { return std::string(); },
                             [&](auto&) { return state_->api->cuEventDestroy(event_); });
  }
  event_completion(const event_completion&) = delete;
  event_completion& operator=(const event_completion&) = delete;

  bool ready() override {
    if (done_)
      return true;
    CUresult query = CUDA_SUCCESS;
    status s = state_->in_context(device_, "copy", [&] { return call_; }, [&](auto&) {
      query = state_->api->cuEventQuery(event_);
      return query == CUDA_ERROR_NOT_READY ? CUDA_SUCCESS : query;
    });
    if (s && query == CUDA_ERROR_NOT_READY)
      return false;
    finish(std::move(s));
    return true;
  }

  status wait() override {
    if (!done_)
      finish(state_->in_context(device_, "copy", [&] { return call_; },
                                [&](auto&) { return state_->api->cuEventSynchronize(event_); }));
    if (error_)
      return *error_;
    return {};
  }

private:
  void finish(status outcome) {
    done_ = true;
    if (!outcome)
      error_ = outcome.error();
  }

  state_ptr state_;
  int device_;
  CUevent event_;
  std::string call_;  // for the error message of an asynchronous failure
  bool done_ = false;
  std::optional<device_error> error_;
};

/// Queues a copy on `device`'s stream for its direction, then an event behind it.
template <class Enqueue>
result<copy_handle> start_copy(const state_ptr& s, int device, bool to_host, std::string call,
                               Enqueue enqueue) {
  CUevent event = nullptr;
  status queued = s->in_context(device, to_host ? "copy_to_host_async" : "copy_to_device_async",
                                [&] { return call; }, [&](auto& slot) {
    const CUstream stream = to_host ? slot.to_host : slot.to_device;
    if (const CUresult rc = enqueue(stream); rc != CUDA_SUCCESS)
      return rc;
    CUresult rc = s->api->cuEventCreate(&event, CU_EVENT_DISABLE_TIMING);
    if (rc == CUDA_SUCCESS && (rc = s->api->cuEventRecord(event, stream)) != CUDA_SUCCESS) {
      s->api->cuEventDestroy(event);
      event = nullptr;
    }
    if (rc != CUDA_SUCCESS) {
      // Without an event nobody could wait for the copy, and the caller would reuse
      // its buffer under it: let it finish first.
      s->api->cuStreamSynchronize(stream);
      call += " (then cuEventCreate/cuEventRecord)";
    }
    return rc;
  });
  if (!queued)
    return queued.error();
  return copy_handle(std::make_unique<event_completion>(s, device, event, std::move(call)));
}

} // namespace

cuda_driver_backend::cuda_driver_backend(std::shared_ptr<state> s) : state_(std::move(s)) {}

cuda_driver_backend::~cuda_driver_backend() = default;

result<std::unique_ptr<cuda_driver_backend>> cuda_driver_backend::open(
  cuda_backend_options options) {
  if (options.library.empty())
    options.library = default_driver_library();
  auto api = driver_api::load(options.library);
  if (!api)
    return api.error();
  auto s = std::make_shared<state>();
  s->api = std::move(api).value();
  s->options = std::move(options);

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

  // No context yet: a device is only touched once it is used.
  s->devices.resize(static_cast<std::size_t>(s->device_count));
  for (int i = 0; i < s->device_count; ++i) {
    state::device_slot& slot = s->devices[static_cast<std::size_t>(i)];
    if (const CUresult rc = cu.cuDeviceGet(&slot.device, i); rc != CUDA_SUCCESS)
      return fail(rc, "cuDeviceGet" + on(i));
    int value = 0;
    slot.exportable = s->options.exportable &&
      cu.cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
                              slot.device) == CUDA_SUCCESS && value != 0;
    value = 0;
    slot.rdma_capable = s->options.rdma_capable &&
      cu.cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED,
                              slot.device) == CUDA_SUCCESS && value != 0;
  }
  if (s->options.peer_access)
    for (int i = 0; i < s->device_count; ++i)
      for (int peer = 0; peer < s->device_count; ++peer) {
        int can = 0;
        if (peer != i &&
            cu.cuDeviceCanAccessPeer(&can, s->devices[static_cast<std::size_t>(peer)].device,
                                     s->devices[static_cast<std::size_t>(i)].device) ==
              CUDA_SUCCESS && can != 0)
          s->devices[static_cast<std::size_t>(i)].peers.push_back(peer);
      }
  return std::unique_ptr<cuda_driver_backend>(new cuda_driver_backend(std::move(s)));
}

result<int> cuda_driver_backend::device_count() {
  return state_->device_count;
}

std::optional<device_error> cuda_driver_backend::lost(int device) const {
  if (device < 0 || device >= state_->device_count)
    return std::nullopt;
  std::lock_guard lock(state_->mutex);
  return state_->devices[static_cast<std::size_t>(device)].lost;
}

result<device_properties> cuda_driver_backend::properties(int device) {
  // Attributes need no context: describing a device does not retain it.
  if (device < 0 || device >= state_->device_count)
    return device_error(error_code::invalid_device,
                        "properties" + on(device) + ": no such device; there are " +
                          std::to_string(state_->device_count) + " CUDA device(s)");
  const driver_api& cu = *state_->api;
  const CUdevice dev = state_->devices[static_cast<std::size_t>(device)].device;

  device_properties props;
  props.ordinal = device;
  char name[256] = {};
  if (const CUresult rc = cu.cuDeviceGetName(name, sizeof name, dev); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceGetName" + on(device));
  props.name = name;
  if (const CUresult rc = cu.cuDeviceTotalMem(&props.total_memory, dev); rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceTotalMem" + on(device));
  int vmm = 0;
  if (const CUresult rc = cu.cuDeviceGetAttribute(
        &vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev);
      rc != CUDA_SUCCESS)
    return state_->error(rc, "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device " +
                               std::to_string(device) + ")");
  props.vmm_supported = vmm != 0;

  // Without VMM the granularity query fails; such a device is still described.
  if (props.vmm_supported) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
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
  memory_info info;
  status s = state_->in_context(device, "memory", [&] { return "cuMemGetInfo" + on(device); },
                                [&](auto&) { return state_->api->cuMemGetInfo(&info.free, &info.total); });
  if (!s)
    return s.error();
  return info;
}

result<device_ptr> cuda_driver_backend::reserve(int device, std::size_t size,
                                                std::size_t alignment) {
  const auto call = [&] {
    return "cuMemAddressReserve(device " + std::to_string(device) + ", size " +
           std::to_string(size) + ", alignment " + std::to_string(alignment) + ")";
  };
  if (size == 0)
    return invalid_value(call(), "size must not be zero");
  CUdeviceptr base = 0;
  status s = state_->in_context(device, "reserve", call, [&](auto&) {
    return state_->api->cuMemAddressReserve(&base, size, alignment, 0, 0);
  });
  if (!s)
    return s.error();
  std::lock_guard lock(state_->mutex);
  state_->reservations[base] = {size, device};
  return static_cast<device_ptr>(base);
}

status cuda_driver_backend::free_reservation(device_ptr base, std::size_t size) {
  const auto call = [&] { return "cuMemAddressFree(" + hex(base) + ", size " + std::to_string(size) + ")"; };
  auto device = state_->owner_of(base, call());
  if (!device)
    return device.error();
  status s = state_->in_context(*device, "free_reservation", call,
                                [&](auto&) { return state_->api->cuMemAddressFree(base, size); });
  if (s) {
    std::lock_guard lock(state_->mutex);
    state_->reservations.erase(base);
  }
  return s;
}

result<chunk_handle> cuda_driver_backend::create_chunk(int device, std::size_t size) {
  const auto call = [&] {
    return "cuMemCreate(device " + std::to_string(device) + ", size " + std::to_string(size) + ")";
  };
  if (size == 0)
    return invalid_value(call(), "size must not be zero");
  CUmemGenericAllocationHandle handle = 0;
  status s = state_->in_context(device, "create_chunk", call, [&](auto& slot) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device;
    if (slot.exportable)  // shareable with other processes (IPC), as PyTorch's are
      prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    if (slot.rdma_capable)  // registrable with a NIC (GPUDirect RDMA)
      prop.allocFlags.gpuDirectRDMACapable = 1;
    return state_->api->cuMemCreate(&handle, size, &prop, 0);
  });
  if (!s)
    return s.error();
  std::lock_guard lock(state_->mutex);
  state_->chunks[static_cast<chunk_handle>(handle)] = device;
  return static_cast<chunk_handle>(handle);
}

status cuda_driver_backend::release_chunk(chunk_handle chunk) {
  const auto call = [&] { return "cuMemRelease(chunk " + hex(chunk) + ")"; };
  auto device = state_->owner_of_chunk(chunk, call());
  if (!device)
    return device.error();
  status s = state_->in_context(*device, "release_chunk", call,
                                [&](auto&) { return state_->api->cuMemRelease(chunk); });
  if (s) {
    std::lock_guard lock(state_->mutex);
    state_->chunks.erase(chunk);
  }
  return s;
}

status cuda_driver_backend::map(device_ptr address, std::size_t size, chunk_handle chunk) {
  const auto call = [&] {
    return "cuMemMap(" + hex(address) + ", size " + std::to_string(size) + ", chunk " + hex(chunk) + ")";
  };
  auto device = state_->owner_of_chunk(chunk, call());
  if (!device)
    return device.error();
  return state_->in_context(*device, "map", call, [&](auto&) {
    return state_->api->cuMemMap(address, size, 0, chunk, 0);
  });
}

status cuda_driver_backend::unmap(device_ptr address, std::size_t size) {
  const auto call = [&] { return "cuMemUnmap(" + hex(address) + ", size " + std::to_string(size) + ")"; };
  auto device = state_->owner_of(address, call());
  if (!device)
    return device.error();
  return state_->in_context(*device, "unmap", call,
                            [&](auto&) { return state_->api->cuMemUnmap(address, size); });
}

status cuda_driver_backend::set_access(int device, device_ptr address, std::size_t size) {
  const auto call = [&] {
    return "cuMemSetAccess(device " + std::to_string(device) + ", " + hex(address) + ", size " +
           std::to_string(size) + ")";
  };
  return state_->in_context(device, "set_access", call, [&](auto& slot) {
    std::vector<CUmemAccessDesc> access(1 + slot.peers.size());
    access[0].location.id = device;
    for (std::size_t i = 0; i < slot.peers.size(); ++i)
      access[i + 1].location.id = slot.peers[i];
    for (CUmemAccessDesc& a : access) {
      a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
      a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    }
    return state_->api->cuMemSetAccess(address, size, access.data(), access.size());
  });
}

result<pinned_buffer> cuda_driver_backend::allocate_pinned(std::size_t size) {
  const auto call = [&] { return "cuMemHostAlloc(size " + std::to_string(size) + ", PORTABLE)"; };
  if (size == 0)
    return invalid_value(call(), "size must not be zero");
  // Portable: usable by every context, so any device's serves; one already in use first.
  int device = -1;
  {
    std::lock_guard lock(state_->mutex);
    for (int i = 0; i < state_->device_count && device < 0; ++i)
      if (state_->devices[static_cast<std::size_t>(i)].context != nullptr &&
          !state_->devices[static_cast<std::size_t>(i)].lost)
        device = i;
  }
  void* data = nullptr;
  status s = device_error(error_code::no_device, call() + ": no usable CUDA device");
  for (int i = device >= 0 ? device : 0; i < state_->device_count; ++i) {
    s = state_->in_context(i, "allocate_pinned", call, [&](auto&) {
      return state_->api->cuMemHostAlloc(&data, size, CU_MEMHOSTALLOC_PORTABLE);
    });
    if (s) {
      device = i;
      break;
    }
    if (device >= 0)
      break;
  }
  if (!s)
    return s.error();
  // The buffer shares the state: its context stays retained until it is freed.
  return pinned_buffer(data, size, [s = state_, device](void* p, std::size_t) {
    (void)s->in_context(device, "~pinned_buffer", [] { return std::string("cuMemFreeHost"); },
                        [&](auto&) { return s->api->cuMemFreeHost(p); });
  });
}

result<copy_handle> cuda_driver_backend::copy_to_host_async(int device, void* dst, device_ptr src,
                                                            std::size_t size) {
  std::string call = "cuMemcpyDtoHAsync(device " + std::to_string(device) + ", dst " +
                     hex(reinterpret_cast<std::uintptr_t>(dst)) + ", src " + hex(src) + ", size " +
                     std::to_string(size) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  return start_copy(state_, device, true, std::move(call), [&](CUstream stream) {
    return state_->api->cuMemcpyDtoHAsync(dst, src, size, stream);
  });
}

result<copy_handle> cuda_driver_backend::copy_to_device_async(int device, device_ptr dst,
                                                              const void* src, std::size_t size) {
  std::string call = "cuMemcpyHtoDAsync(device " + std::to_string(device) + ", dst " + hex(dst) +
                     ", src " + hex(reinterpret_cast<std::uintptr_t>(src)) + ", size " +
                     std::to_string(size) + ")";
  if (size == 0)
    return invalid_value(call, "size must not be zero");
  return start_copy(state_, device, false, std::move(call), [&](CUstream stream) {
    return state_->api->cuMemcpyHtoDAsync(dst, src, size, stream);
  });
}

status cuda_driver_backend::synchronize(int device) {
  if (device < 0 || device >= state_->device_count)
    return device_error(error_code::invalid_device,
                        "synchronize" + on(device) + ": no such device; there are " +
                          std::to_string(state_->device_count) + " CUDA device(s)");
  {
    // Never used here: nothing of ours to protect, and no reason to retain it now.
    std::lock_guard lock(state_->mutex);
    const state::device_slot& slot = state_->devices[static_cast<std::size_t>(device)];
    if (slot.context == nullptr && !slot.lost)
      return {};
  }
  return state_->in_context(device, "synchronize", [&] { return "cuCtxSynchronize" + on(device); },
                            [&](auto&) { return state_->api->cuCtxSynchronize(); });
}

} // namespace gpumem::cuda
