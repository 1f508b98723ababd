#pragma once
// The stand-in driver's state: one lock over everything, one worker thread that runs
// the streams. Driver objects (contexts, streams, events) are never freed, so a stale
// handle is caught by a flag instead of a crash.

#include <cuda.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct CUstream_st;
struct CUevent_st;

struct CUctx_st {
  int device = 0;
  int retains = 0;                    // primary context: alive while > 0
  CUresult sticky = CUDA_SUCCESS;     // once set, every call in this context returns it
  CUstream_st* null_stream = nullptr; // the legacy default stream
  std::vector<CUstream_st*> streams;  // including the default one
};

namespace gpumem::standin {

inline constexpr std::size_t granularity = 2u << 20;

struct op {
  enum kind_t { to_host, to_device, event, kernel } kind;
  CUdeviceptr device_address = 0;
  void* host = nullptr;
  std::size_t size = 0;
  CUevent_st* recorded = nullptr;
  int fill = -1;  // a kernel's byte, written when it ends
};

} // namespace gpumem::standin

struct CUstream_st {
  CUctx_st* context = nullptr;
  std::deque<gpumem::standin::op> ops;
  int flushing = 0;  // synchronizers waiting: kernels end, held copies run
  bool destroyed = false;
};

struct CUevent_st {
  CUctx_st* context = nullptr;
  int pending = 0;  // records not yet reached by the worker
  bool destroyed = false;
};

namespace gpumem::standin {

struct device {
  std::string name;
  std::size_t total = 0;
  std::size_t used = 0;
  bool unavailable = false;
  CUctx_st primary;
};

struct chunk {
  int device = 0;
  std::size_t size = 0;
  int fd = -1;
  int mappings = 0;
  bool released = false;
  CUmemAllocationProp prop{};
};

struct mapping {
  std::size_t size = 0;
  CUmemGenericAllocationHandle chunk = 0;
  std::set<int> access;  // devices granted read-write
};

struct pinned {
  std::size_t size = 0;
  CUctx_st* context = nullptr;
};

struct driver {
  std::mutex mutex;
  std::condition_variable work;  // the worker: something to run
  std::condition_variable done;  // synchronizers: the worker ran something
  bool initialized = false;
  std::vector<std::unique_ptr<device>> devices;
  std::map<CUdeviceptr, std::size_t> reservations;
  std::map<CUdeviceptr, mapping> mappings;  // by start, never overlapping
  std::unordered_map<CUmemGenericAllocationHandle, chunk> chunks;
  CUmemGenericAllocationHandle next_handle = 1;
  std::unordered_map<void*, pinned> pinned_memory;
  std::set<void*> died_with_context;
  std::vector<std::unique_ptr<CUstream_st>> all_streams;
  std::vector<std::unique_ptr<CUevent_st>> all_events;
  CUresult copy_fault = CUDA_SUCCESS;
  CUresult event_record_fault = CUDA_SUCCESS;
  bool hold_copies = false;
  unsigned long long context_calls = 0;
  std::thread worker;

  static driver& get();
};

/// The calling thread's current context.
CUctx_st*& current();

/// Whether `rc` leaves the context unusable ("the process must be terminated").
bool is_sticky(CUresult rc);

/// Prints what the real driver leaves undefined, and aborts.
[[noreturn]] void undefined_behaviour(const std::string& what);

/// Under the lock: the checks every call that needs a context makes. CUDA_SUCCESS
/// with the context, or the error to return.
CUresult enter(driver& d, CUctx_st*& context);

/// Under the lock: poisons `context` with a sticky error and returns it.
CUresult poison(CUctx_st* context, CUresult rc);

/// Under the lock: waits until the worker has emptied `stream` (its kernels end).
void flush(driver& d, std::unique_lock<std::mutex>& lock, CUstream_st* stream);

/// Under the lock: a running kernel's range overlapping [address, address + size).
const op* busy_kernel(driver& d, CUdeviceptr address, std::size_t size, CUctx_st** owner);

/// Under the lock: whether mappings cover [address, address + size) with no hole, each
/// granting `device` access.
bool accessible(driver& d, CUdeviceptr address, std::size_t size, int device);

/// Starts the worker once.
void start_worker(driver& d);

/// Under the lock: frees a primary context's streams' work and pinned memory.
void destroy_context(driver& d, CUctx_st* context);

} // namespace gpumem::standin
