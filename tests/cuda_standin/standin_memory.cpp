// The stand-in's memory: address reservations (mmap PROT_NONE), physical chunks
// (memfd), mappings (MAP_FIXED over the reservation), access, and pinned host memory.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

#include "standin_state.hpp"

using namespace gpumem::standin;

namespace {

void* at(CUdeviceptr address) { return reinterpret_cast<void*>(address); }

bool aligned(std::size_t value) { return value % granularity == 0; }

/// The reservation holding all of [address, address + size), or end().
std::map<CUdeviceptr, std::size_t>::iterator reservation_of(driver& d, CUdeviceptr address,
                                                            std::size_t size) {
  auto it = d.reservations.upper_bound(address);
  if (it == d.reservations.begin())
    return d.reservations.end();
  --it;
  return address + size <= it->first + it->second ? it : d.reservations.end();
}

bool overlaps_mapping(driver& d, CUdeviceptr address, std::size_t size) {
  auto it = d.mappings.lower_bound(address);
  if (it != d.mappings.end() && it->first < address + size)
    return true;
  if (it == d.mappings.begin())
    return false;
  --it;
  return it->first + it->second.size > address;
}

/// The mappings tiling [address, address + size) exactly; empty if none do.
std::vector<std::map<CUdeviceptr, mapping>::iterator> whole_mappings(driver& d,
                                                                     CUdeviceptr address,
                                                                     std::size_t size) {
  std::vector<std::map<CUdeviceptr, mapping>::iterator> tiles;
  CUdeviceptr next = address;
  for (auto it = d.mappings.find(address);
       it != d.mappings.end() && it->first == next && next < address + size; ++it) {
    tiles.push_back(it);
    next += it->second.size;
  }
  if (next != address + size)
    tiles.clear();
  return tiles;
}

void free_chunk(driver& d, CUmemGenericAllocationHandle handle) {
  chunk& c = d.chunks.at(handle);
  close(c.fd);
  d.devices[static_cast<std::size_t>(c.device)]->used -= c.size;
  d.chunks.erase(handle);
}

} // namespace

extern "C" {

CUresult cuMemGetInfo(size_t* free, size_t* total) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (free == nullptr || total == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  const device& dev = *d.devices[static_cast<std::size_t>(ctx->device)];
  *total = dev.total;
  *free = dev.total - dev.used;
  return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationGranularity(size_t* value, const CUmemAllocationProp* prop,
                                       CUmemAllocationGranularity_flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (!d.initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (value == nullptr || prop == nullptr || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      prop->location.id < 0 || static_cast<std::size_t>(prop->location.id) >= d.devices.size())
    return CUDA_ERROR_INVALID_VALUE;
  *value = granularity;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (alignment == 0)
    alignment = granularity;
  if (ptr == nullptr || size == 0 || !aligned(size) || !aligned(alignment) ||
      (alignment & (alignment - 1)) != 0 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  (void)addr;  // a hint only
  void* raw = mmap(nullptr, size + alignment, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  const auto start = reinterpret_cast<CUdeviceptr>(raw);
  const CUdeviceptr base = (start + alignment - 1) / alignment * alignment;
  if (base > start)
    munmap(raw, base - start);
  if (const CUdeviceptr end = start + size + alignment; end > base + size)
    munmap(at(base + size), end - (base + size));
  d.reservations[base] = size;
  *ptr = base;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto it = d.reservations.find(ptr);
  if (it == d.reservations.end() || it->second != size || overlaps_mapping(d, ptr, size))
    return CUDA_ERROR_INVALID_VALUE;
  munmap(at(ptr), size);
  d.reservations.erase(it);
  return CUDA_SUCCESS;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                     const CUmemAllocationProp* prop, unsigned long long flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (handle == nullptr || prop == nullptr || flags != 0 || size == 0 || !aligned(size) ||
      prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE || prop->location.id < 0 ||
      static_cast<std::size_t>(prop->location.id) >= d.devices.size())
    return CUDA_ERROR_INVALID_VALUE;
  if (prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE &&
      prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
    return CUDA_ERROR_NOT_SUPPORTED;
  device& dev = *d.devices[static_cast<std::size_t>(prop->location.id)];
  if (size > dev.total - dev.used)
    return CUDA_ERROR_OUT_OF_MEMORY;
  const int fd = memfd_create("gpumem-cuda-standin-chunk", MFD_CLOEXEC);
  if (fd < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  chunk c;
  c.device = prop->location.id;
  c.size = size;
  c.fd = fd;
  c.prop = *prop;
  dev.used += size;
  *handle = d.next_handle++;
  d.chunks.emplace(*handle, c);
  return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                CUmemGenericAllocationHandle handle) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto it = d.chunks.find(handle);
  if (prop == nullptr || it == d.chunks.end() || it->second.released)
    return CUDA_ERROR_INVALID_VALUE;
  *prop = it->second.prop;
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto it = d.chunks.find(handle);
  if (it == d.chunks.end() || it->second.released)
    undefined_behaviour("cuMemRelease of handle " + std::to_string(handle) +
                        ", which is not a live allocation");
  it->second.released = true;
  if (it->second.mappings == 0)  // else the last cuMemUnmap frees it
    free_chunk(d, handle);
  return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                  CUmemGenericAllocationHandle handle, unsigned long long flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  // cuda.h: "offset ... currently must be zero"; "flags ... currently must be zero".
  auto it = d.chunks.find(handle);
  if (offset != 0 || flags != 0 || size == 0 || !aligned(ptr) || !aligned(size) ||
      it == d.chunks.end() || it->second.released || size > it->second.size ||
      reservation_of(d, ptr, size) == d.reservations.end() || overlaps_mapping(d, ptr, size))
    return CUDA_ERROR_INVALID_VALUE;
  if (mmap(at(ptr), size, PROT_NONE, MAP_SHARED | MAP_FIXED, it->second.fd, 0) == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  ++it->second.mappings;
  d.mappings[ptr] = mapping{size, handle, {}};
  return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto tiles = whole_mappings(d, ptr, size);
  if (size == 0 || tiles.empty())
    return CUDA_ERROR_INVALID_VALUE;
  CUctx_st* owner = nullptr;
  if (busy_kernel(d, ptr, size, &owner) != nullptr) {
    // The kernel faults on the vanished pages: Xid 31, its context is dead.
    poison(owner, CUDA_ERROR_ILLEGAL_ADDRESS);
    return poison(ctx, CUDA_ERROR_ILLEGAL_ADDRESS);
  }
  if (mmap(at(ptr), size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
           0) == MAP_FAILED)
    return CUDA_ERROR_UNKNOWN;
  for (auto tile : tiles) {
    const CUmemGenericAllocationHandle handle = tile->second.chunk;
    d.mappings.erase(tile);
    chunk& c = d.chunks.at(handle);
    if (--c.mappings == 0 && c.released)
      free_chunk(d, handle);
  }
  return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto tiles = whole_mappings(d, ptr, size);
  if (size == 0 || tiles.empty() || desc == nullptr || count == 0)
    return CUDA_ERROR_INVALID_VALUE;
  for (std::size_t i = 0; i < count; ++i)
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || desc[i].location.id < 0 ||
        static_cast<std::size_t>(desc[i].location.id) >= d.devices.size())
      return CUDA_ERROR_INVALID_DEVICE;
  for (auto tile : tiles)
    for (std::size_t i = 0; i < count; ++i) {
      if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
        tile->second.access.insert(desc[i].location.id);
      else
        tile->second.access.erase(desc[i].location.id);
    }
  // The host touches device memory directly here: readable while anyone may access.
  for (auto tile : tiles)
    mprotect(at(tile->first), tile->second.size,
             tile->second.access.empty() ? PROT_NONE : PROT_READ | PROT_WRITE);
  return CUDA_SUCCESS;
}

CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location, CUdeviceptr ptr) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (flags == nullptr || location == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  auto it = d.mappings.upper_bound(ptr);
  if (it == d.mappings.begin())
    return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (ptr >= it->first + it->second.size)
    return CUDA_ERROR_INVALID_VALUE;
  *flags = it->second.access.count(location->id) ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                                                 : CU_MEM_ACCESS_FLAGS_PROT_NONE;
  return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pp, size_t size, unsigned int flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (pp == nullptr || size == 0 ||
      (flags & ~(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                 CU_MEMHOSTALLOC_WRITECOMBINED)) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return CUDA_ERROR_OUT_OF_MEMORY;
  d.died_with_context.erase(p);
  d.pinned_memory[p] = pinned{size, ctx};
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* p) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  if (d.died_with_context.count(p))
    undefined_behaviour("cuMemFreeHost of pinned memory whose context was destroyed");
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  auto it = d.pinned_memory.find(p);
  if (it == d.pinned_memory.end())
    return CUDA_ERROR_INVALID_VALUE;
  munmap(p, it->second.size);
  d.pinned_memory.erase(it);
  return CUDA_SUCCESS;
}

} // extern "C"
