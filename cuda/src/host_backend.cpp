#include "gpumem/cuda/host_backend.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "gpumem/cuda/byte_units.hpp"
#include "host_copy_engine.hpp"

namespace gpumem::cuda {

namespace {

std::string hex(device_ptr address) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%zx", static_cast<std::size_t>(address));
  return text;
}

device_error invalid(std::string message) {
  return {error_code::invalid_value, std::move(message)};
}

device_error system_failure(const char* call, int err) {
  return {error_code::system_error, std::string(call) + " failed: " + std::strerror(err)};
}

bool is_power_of_two(std::size_t value) { return value != 0 && (value & (value - 1)) == 0; }

constexpr int fault_point_count = 5;

} // namespace

struct host_backend::state {
  struct device {
    host_device_config config;
    std::size_t used = 0;  // physical bytes held by chunks (live or still mapped)
    std::unique_ptr<detail::host_copy_engine> copier;
  };
  struct reservation {
    int device;
    std::size_t size;
  };
  struct chunk {
    int device;
    std::size_t size;
    int fd;                     // -1 once released: no new mappings
    std::size_t mappings = 0;   // the pages live until the last one goes
  };
  struct mapping {
    std::size_t size;
    chunk_handle chunk;
    bool accessible = false;
  };
  struct pending_fault {
    std::uint64_t at_call;
    error_code code;
  };

  mutable std::mutex mutex;
  std::vector<device> devices;
  std::map<device_ptr, reservation> reservations;  // by base address
  std::unordered_map<chunk_handle, chunk> chunks;
  std::map<device_ptr, mapping> mappings;  // by start address, never overlapping
  chunk_handle next_handle = 1;
  std::array<std::uint64_t, fault_point_count> calls{};
  std::array<std::vector<pending_fault>, fault_point_count> faults;

  /// Counts one call of `point` and returns the fault planned for it, if any.
  std::optional<device_error> take_fault(fault_point point, const char* operation) {
    auto index = static_cast<std::size_t>(point);
    auto call = ++calls[index];
    auto& planned = faults[index];
    for (auto it = planned.begin(); it != planned.end(); ++it) {
      if (it->at_call == call) {
        device_error fault{it->code, std::string("injected fault in ") + operation + " (call "
                                       + std::to_string(call) + ")"};
        planned.erase(it);
        return fault;
      }
    }
    return std::nullopt;
  }

  result<device*> find_device(int ordinal, const char* operation) {
    if (ordinal < 0 || static_cast<std::size_t>(ordinal) >= devices.size())
      return device_error{error_code::invalid_device,
                          std::string(operation) + ": no device " + std::to_string(ordinal)
                            + " (the host backend has " + std::to_string(devices.size()) + ")"};
    return &devices[static_cast<std::size_t>(ordinal)];
  }

  /// The reservation holding [address, address + size), if one does entirely.
  const reservation* enclosing_reservation(device_ptr address, std::size_t size) const {
    auto it = reservations.upper_bound(address);
    if (it == reservations.begin())
      return nullptr;
    --it;
    if (address + size > it->first + it->second.size)
      return nullptr;
    return &it->second;
  }

  /// Whether any mapping overlaps [address, address + size).
  bool overlaps_mapping(device_ptr address, std::size_t size) const {
    auto it = mappings.lower_bound(address);
    if (it != mappings.end() && it->first < address + size)
      return true;
    if (it == mappings.begin())
      return false;
    --it;
    return it->first + it->second.size > address;
  }

  /// The mappings that tile [address, address + size) exactly, in order; empty if
  /// the range starts or ends inside a mapping or has a hole.
  std::vector<std::map<device_ptr, mapping>::iterator> whole_mappings(device_ptr address,
                                                                      std::size_t size) {
    std::vector<std::map<device_ptr, mapping>::iterator> tiles;
    auto it = mappings.find(address);
    device_ptr next = address;
    while (it != mappings.end() && it->first == next && next < address + size) {
      tiles.push_back(it);
      next += it->second.size;
      ++it;
    }
    if (next != address + size)
      tiles.clear();
    return tiles;
  }

  /// Whether [address, address + size) lies in accessible mappings with no hole.
  bool accessible(device_ptr address, std::size_t size) const {
    auto it = mappings.upper_bound(address);
    if (it == mappings.begin())
      return false;
    --it;
    device_ptr covered = address;
    while (it != mappings.end() && it->first <= covered && covered < address + size) {
      if (!it->second.accessible || it->first + it->second.size <= covered)
        return false;
      covered = it->first + it->second.size;
      ++it;
    }
    return covered >= address + size;
  }

  /// Drops one mapping's hold on its chunk; the last hold of a released chunk frees it.
  void drop_mapping_of(chunk_handle handle) {
    auto it = chunks.find(handle);
    auto& c = it->second;
    --c.mappings;
    if (c.fd < 0 && c.mappings == 0) {
      devices[static_cast<std::size_t>(c.device)].used -= c.size;
      chunks.erase(it);
    }
  }
};

host_backend::host_backend(host_backend_config config) : state_(std::make_unique<state>()) {
  for (auto& device : config.devices) {
    state::device d;
    d.config = device;
    d.copier = std::make_unique<detail::host_copy_engine>();
    state_->devices.push_back(std::move(d));
  }
}

host_backend::~host_backend() {
  // Copies first (they may still read mappings), then mappings, chunks, reservations.
  for (auto& device : state_->devices)
    device.copier.reset();
  for (auto& [address, m] : state_->mappings)
    ::munmap(reinterpret_cast<void*>(address), m.size);
  for (auto& [handle, c] : state_->chunks)
    if (c.fd >= 0)
      ::close(c.fd);
  for (auto& [base, r] : state_->reservations)
    ::munmap(reinterpret_cast<void*>(base), r.size);
}

result<int> host_backend::device_count() {
  return static_cast<int>(state_->devices.size());
}

result<device_properties> host_backend::properties(int device) {
  std::lock_guard lock(state_->mutex);
  auto d = state_->find_device(device, "properties");
  if (!d)
    return d.error();
  device_properties props;
  props.ordinal = device;
  props.name = "gpumem host device " + std::to_string(device);
  props.total_memory = (*d)->config.capacity;
  props.vmm_supported = true;
  props.granularity_minimum = (*d)->config.granularity;
  props.granularity_recommended = (*d)->config.recommended_granularity;
  return props;
}

result<memory_info> host_backend::memory(int device) {
  std::lock_guard lock(state_->mutex);
  auto d = state_->find_device(device, "memory");
  if (!d)
    return d.error();
  return memory_info{(*d)->config.capacity - (*d)->used, (*d)->config.capacity};
}

result<device_ptr> host_backend::reserve(int device, std::size_t size, std::size_t alignment) {
  std::lock_guard lock(state_->mutex);
  auto d = state_->find_device(device, "reserve");
  if (!d)
    return d.error();
  auto granularity = (*d)->config.granularity;
  if (size == 0 || size % granularity != 0)
    return invalid("reserve(" + format_bytes(size) + "): size must be a non-zero multiple of "
                   + format_bytes(granularity));
  if (alignment == 0)
    alignment = granularity;
  if (!is_power_of_two(alignment))
    return invalid("reserve: alignment " + std::to_string(alignment) + " is not a power of two");
  if (auto fault = state_->take_fault(fault_point::reserve, "reserve"))
    return *fault;

  // Over-reserve, then trim head and tail so the base is aligned.
  std::size_t span = size + alignment;
  void* raw = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return device_error{error_code::out_of_memory,
                        "reserve(" + format_bytes(size) + "): no virtual address space: "
                          + std::strerror(errno)};
  auto start = reinterpret_cast<device_ptr>(raw);
  auto base = round_up(start, alignment);
  if (base > start)
    ::munmap(raw, base - start);
  if (auto tail = start + span - (base + size); tail > 0)
    ::munmap(reinterpret_cast<void*>(base + size), tail);
  state_->reservations.emplace(base, state::reservation{device, size});
  return base;
}

status host_backend::free_reservation(device_ptr base, std::size_t size) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->reservations.find(base);
  if (it == state_->reservations.end() || it->second.size != size)
    return invalid("free_reservation(" + hex(base) + ", " + format_bytes(size)
                   + "): not a reservation of that base and size");
  if (state_->overlaps_mapping(base, size))
    return invalid("free_reservation(" + hex(base) + "): the range still holds mappings");
  ::munmap(reinterpret_cast<void*>(base), size);
  state_->reservations.erase(it);
  return {};
}

result<chunk_handle> host_backend::create_chunk(int device, std::size_t size) {
  {
    std::lock_guard lock(state_->mutex);
    auto d = state_->find_device(device, "create_chunk");
    if (!d)
      return d.error();
    auto granularity = (*d)->config.granularity;
    if (size == 0 || size % granularity != 0)
      return invalid("create_chunk(" + format_bytes(size)
                     + "): size must be a non-zero multiple of " + format_bytes(granularity));
    if (auto fault = state_->take_fault(fault_point::create, "create_chunk"))
      return *fault;
    auto& used = (*d)->used;
    auto capacity = (*d)->config.capacity;
    if (size > capacity - used)
      return device_error{error_code::out_of_memory,
                          "create_chunk(device " + std::to_string(device) + ", "
                            + format_bytes(size) + "): " + format_bytes(used) + " of "
                            + format_bytes(capacity) + " in use, " + format_bytes(capacity - used)
                            + " free"};
    used += size;  // held while the pages are made, outside the lock
  }
  auto give_back = [&] {
    std::lock_guard lock(state_->mutex);
    state_->devices[static_cast<std::size_t>(device)].used -= size;
  };

  int fd = ::memfd_create("gpumem-chunk", MFD_CLOEXEC);
  if (fd < 0) {
    give_back();
    return system_failure("memfd_create", errno);
  }
  // fallocate makes the pages exist now, as cuMemCreate does: no surprise later.
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0
      || ::fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) {
    int err = errno;
    ::close(fd);
    give_back();
    if (err == ENOSPC || err == ENOMEM)
      return device_error{error_code::out_of_memory,
                          "create_chunk(" + format_bytes(size) + "): host memory exhausted"};
    return system_failure("fallocate", err);
  }

  std::lock_guard lock(state_->mutex);
  auto handle = state_->next_handle++;
  state_->chunks.emplace(handle, state::chunk{device, size, fd});
  return handle;
}

status host_backend::release_chunk(chunk_handle handle) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->chunks.find(handle);
  if (it == state_->chunks.end() || it->second.fd < 0)
    return invalid("release_chunk(" + std::to_string(handle) + "): unknown chunk handle");
  auto& c = it->second;
  ::close(c.fd);
  c.fd = -1;
  if (c.mappings == 0) {
    state_->devices[static_cast<std::size_t>(c.device)].used -= c.size;
    state_->chunks.erase(it);
  }
  return {};
}

status host_backend::map(device_ptr address, std::size_t size, chunk_handle handle) {
  std::lock_guard lock(state_->mutex);
  auto it = state_->chunks.find(handle);
  if (it == state_->chunks.end() || it->second.fd < 0)
    return invalid("map(" + hex(address) + "): unknown chunk handle " + std::to_string(handle));
  auto& c = it->second;
  auto granularity = state_->devices[static_cast<std::size_t>(c.device)].config.granularity;
  if (size == 0 || address % granularity != 0 || size % granularity != 0)
    return invalid("map(" + hex(address) + ", " + format_bytes(size)
                   + "): address and size must align to " + format_bytes(granularity));
  if (size > c.size)
    return invalid("map: " + format_bytes(size) + " exceeds the chunk's " + format_bytes(c.size));
  if (state_->enclosing_reservation(address, size) == nullptr)
    return invalid("map(" + hex(address) + ", " + format_bytes(size)
                   + "): the range is not inside one reservation");
  if (state_->overlaps_mapping(address, size))
    return invalid("map(" + hex(address) + ", " + format_bytes(size)
                   + "): the range is already mapped");
  if (auto fault = state_->take_fault(fault_point::map, "map"))
    return *fault;

  void* placed = ::mmap(reinterpret_cast<void*>(address), size, PROT_NONE,
                        MAP_SHARED | MAP_FIXED, c.fd, 0);
  if (placed == MAP_FAILED)
    return system_failure("mmap", errno);
  ++c.mappings;
  state_->mappings.emplace(address, state::mapping{size, handle});
  return {};
}

status host_backend::unmap(device_ptr address, std::size_t size) {
  std::lock_guard lock(state_->mutex);
  auto tiles = state_->whole_mappings(address, size);
  if (size == 0 || tiles.empty())
    return invalid("unmap(" + hex(address) + ", " + format_bytes(size)
                   + "): the range is not made of whole mappings");
  // Put the reservation's placeholder back: the address stays reserved, inaccessible.
  void* placeholder = ::mmap(reinterpret_cast<void*>(address), size, PROT_NONE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
  if (placeholder == MAP_FAILED)
    return system_failure("mmap", errno);
  for (auto tile : tiles) {
    auto handle = tile->second.chunk;
    state_->mappings.erase(tile);
    state_->drop_mapping_of(handle);
  }
  return {};
}

status host_backend::set_access(int device, device_ptr address, std::size_t size) {
  std::lock_guard lock(state_->mutex);
  if (auto d = state_->find_device(device, "set_access"); !d)
    return d.error();
  auto tiles = state_->whole_mappings(address, size);
  if (size == 0 || tiles.empty())
    return invalid("set_access(" + hex(address) + ", " + format_bytes(size)
                   + "): the range is not made of whole mappings");
  if (auto fault = state_->take_fault(fault_point::set_access, "set_access"))
    return *fault;
  auto* start = reinterpret_cast<void*>(address);
  if (::mprotect(start, size, PROT_READ | PROT_WRITE) != 0)
    return system_failure("mprotect", errno);
#ifdef MADV_POPULATE_WRITE
  // Build the page tables now, as a GPU's map does, so the first copy is not a
  // storm of page faults. Older kernels lack it; that only costs speed.
  ::madvise(start, size, MADV_POPULATE_WRITE);
#endif
  for (auto tile : tiles)
    tile->second.accessible = true;
  return {};
}

result<pinned_buffer> host_backend::allocate_pinned(std::size_t size) {
  if (size == 0)
    return invalid("allocate_pinned: size must be non-zero");
  // Populated up front: pinned memory is resident, never faulted in during a copy.
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (data == MAP_FAILED)
    return device_error{error_code::out_of_memory,
                        "allocate_pinned(" + format_bytes(size) + "): " + std::strerror(errno)};
  return pinned_buffer(data, size, [](void* p, std::size_t n) { ::munmap(p, n); });
}

result<copy_handle> host_backend::copy_to_host_async(int device, void* dst, device_ptr src,
                                                     std::size_t size) {
  std::lock_guard lock(state_->mutex);
  auto d = state_->find_device(device, "copy_to_host_async");
  if (!d)
    return d.error();
  if (size == 0 || dst == nullptr)
    return invalid("copy_to_host_async: size must be non-zero and the host pointer set");
  if (!state_->accessible(src, size))
    return invalid("copy_to_host_async(" + hex(src) + ", " + format_bytes(size)
                   + "): the device range is not mapped with access");
  auto fault = state_->take_fault(fault_point::copy, "copy_to_host_async");
  return (*d)->copier->submit(dst, reinterpret_cast<const void*>(src), size, std::move(fault));
}

result<copy_handle> host_backend::copy_to_device_async(int device, device_ptr dst,
                                                       const void* src, std::size_t size) {
  std::lock_guard lock(state_->mutex);
  auto d = state_->find_device(device, "copy_to_device_async");
  if (!d)
    return d.error();
  if (size == 0 || src == nullptr)
    return invalid("copy_to_device_async: size must be non-zero and the host pointer set");
  if (!state_->accessible(dst, size))
    return invalid("copy_to_device_async(" + hex(dst) + ", " + format_bytes(size)
                   + "): the device range is not mapped with access");
  auto fault = state_->take_fault(fault_point::copy, "copy_to_device_async");
  return (*d)->copier->submit(reinterpret_cast<void*>(dst), src, size, std::move(fault));
}

status host_backend::synchronize(int device) {
  std::lock_guard lock(state_->mutex);
  // No client work runs on host memory behind the backend's back: nothing to wait for.
  if (auto d = state_->find_device(device, "synchronize"); !d)
    return d.error();
  return {};
}

void host_backend::inject_fault(fault_point point, int nth, error_code code) {
  std::lock_guard lock(state_->mutex);
  auto index = static_cast<std::size_t>(point);
  auto at = state_->calls[index] + static_cast<std::uint64_t>(nth < 1 ? 1 : nth);
  state_->faults[index].push_back({at, code});
}

void host_backend::clear_faults() {
  std::lock_guard lock(state_->mutex);
  for (auto& planned : state_->faults)
    planned.clear();
}

host_backend::usage host_backend::current_usage() const {
  std::lock_guard lock(state_->mutex);
  usage u;
  u.reservations = state_->reservations.size();
  u.chunks = state_->chunks.size();
  u.mappings = state_->mappings.size();
  for (auto& d : state_->devices)
    u.physical_bytes += d.used;
  return u;
}

} // namespace gpumem::cuda
