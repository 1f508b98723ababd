/* gpumem's C interface (libgpumem.so): one runtime per process, reached from C, from
 * Python (ctypes, python/gpumem) and from PyTorch's CUDAPluggableAllocator.
 *
 * Every function but the two allocator hooks returns GPUMEM_OK (0) or an error code,
 * and leaves the error's text for gpumem_last_error(). Nothing aborts on bad input:
 * null pointers, pointers gpumem did not hand out or already freed, unknown tags and
 * levels, calls before a start: each is an error code with a message. Every call that
 * asks the runtime has a deadline (the runtime's request timeout, or its transition
 * timeout for sleeps and wakes, plus a quarter), so none can hang.
 *
 * Streams: gpumem never sees the caller's streams. Before it unmaps or backs up
 * memory it handed out (a free of a dedicated region, a sleep, trims) it waits for
 * every piece of work queued in the device's primary context, on any stream
 * (cuCtxSynchronize; see docs/gpu-contract.md). So work queued BEFORE a free or sleep
 * is finished before the memory goes; work queued AFTER it on that memory is the
 * caller's bug, as with any allocator. A freed pooled block may be handed to the
 * next gpumem_malloc at once: PyTorch's caching allocator frees a segment only when
 * its own stream-use events are done, which keeps that safe; other callers that free
 * memory still in use on a stream must synchronize that stream first.
 *
 * Threads: every function may be called from any thread. Tag scopes and the last
 * error are per thread.
 */
#ifndef GPUMEM_H
#define GPUMEM_H

#include <stddef.h>
#include <sys/types.h> /* ssize_t */

/* The library is built with hidden visibility and a version script (gpumem.map):
 * the functions marked GPUMEM_API are all it exports. */
#if defined(__GNUC__)
#define GPUMEM_API __attribute__((visibility("default")))
#else
#define GPUMEM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. 1..20 are the runtime protocol's (gpumem::messages::gpumem_errc). */
enum gpumem_status {
  GPUMEM_OK = 0,
  GPUMEM_ZERO_SIZE = 1,            /* an allocation of 0 bytes */
  GPUMEM_TOO_LARGE = 2,            /* more than a device could ever hold */
  GPUMEM_INVALID_ALIGNMENT = 3,
  GPUMEM_UNKNOWN_STRATEGY = 4,
  GPUMEM_INVALID_TAG = 5,          /* an empty tag, or one no pool has */
  GPUMEM_UNKNOWN_REGION = 6,       /* a pointer gpumem did not hand out */
  GPUMEM_DOUBLE_FREE = 7,          /* a pointer already freed */
  GPUMEM_OUT_OF_MEMORY = 8,
  GPUMEM_TAG_ASLEEP = 9,           /* the tag sleeps: wake it first */
  GPUMEM_TRANSITION_IN_PROGRESS = 10,
  GPUMEM_INVALID_TRANSITION = 11,
  GPUMEM_INSUFFICIENT_MEMORY = 12, /* a wake lacks device memory */
  GPUMEM_INVALID_CONFIG = 13,      /* a value out of range (an unknown sleep level) */
  GPUMEM_DEVICE_FAILURE = 14,      /* the device layer failed, or the runtime is gone */
  GPUMEM_DEVICE_ASLEEP = 15,
  GPUMEM_UNKNOWN_DEVICE = 16,
  GPUMEM_NO_DEVICE_AVAILABLE = 17,
  GPUMEM_TIMEOUT = 18,             /* no answer by the call's deadline */
  GPUMEM_ROLLED_BACK = 19,
  GPUMEM_NODE_UNREACHABLE = 20,    /* no node answered, or the link to it was lost */
  /* The C interface's own. */
  GPUMEM_INVALID_ARGUMENT = 100,   /* a null pointer, a negative size, ... */
  GPUMEM_NOT_STARTED = 101,        /* no runtime: gpumem_start* or gpumem_attach first */
  GPUMEM_ALREADY_STARTED = 102,    /* gpumem_stop first */
  GPUMEM_NO_TAG_SCOPE = 103,       /* gpumem_pop_tag without a scope open */
  GPUMEM_START_FAILED = 104,       /* the configuration or the runtime refused to start */
  GPUMEM_INTERNAL = 105            /* an unexpected failure inside (the text says what) */
};

/* -- the runtime ----------------------------------------------------------------- */

/* Starts the process's runtime from command-line style options separated by spaces,
 * e.g. "--gpumem.backend=host --gpumem.host.devices=1" or "--config-file=gpumem.conf"
 * (see config/gpumem.conf for every option); "" starts one with the defaults. No file
 * is read unless named. GPUMEM_START_FAILED names the option that was refused
 * ("--help" and "--dump-config" print their text and start nothing). */
GPUMEM_API int gpumem_start(const char* options);

/* Starts the process's runtime from a TOML config file (config/gpumem.conf's form). */
GPUMEM_API int gpumem_start_from_file(const char* path);

/* Uses a runtime a C++ host started in this process: `endpoint` points to a
 * gpumem::client::endpoint (gpumem/client/endpoint.hpp, local_endpoint()), whose
 * actor system must outlive gpumem_stop(). The library reads that C++ object in
 * place, so the host is built from the same gpumem headers and against the same
 * libcaf_core as the library. The library keeps its own copy of gpumem's client code
 * (nothing but this header's functions is exported): tag scopes a host opens with
 * a C++ client's scope() do not reach gpumem_malloc; gpumem_push_tag does. */
GPUMEM_API int gpumem_attach(const void* endpoint);

/* Stops the runtime gpumem_start* started (every region it held is gone), or forgets
 * the one gpumem_attach named (which keeps running). GPUMEM_NOT_STARTED if none. */
GPUMEM_API int gpumem_stop(void);

/* 1 when a runtime is started or attached, else 0. */
GPUMEM_API int gpumem_is_started(void);

/* The number of devices the runtime manages, in *count. */
GPUMEM_API int gpumem_device_count(int* count);

/* -- memory ---------------------------------------------------------------------- */

/* Allocates `size` bytes on `device` (-1: the runtime chooses) tagged `tag` (NULL:
 * the calling thread's innermost scope, else "default"; "": GPUMEM_INVALID_TAG);
 * the address in *ptr. While its tag sleeps, an allocation waits for the wake (the
 * runtime's while-asleep = "queue") or is refused ("reject"). */
GPUMEM_API int gpumem_malloc(size_t size, int device, const char* tag, void** ptr);

/* Frees what gpumem_malloc returned. NULL, an unknown pointer and a second free are
 * errors (GPUMEM_INVALID_ARGUMENT, GPUMEM_UNKNOWN_REGION, GPUMEM_DOUBLE_FREE) that
 * change nothing. */
GPUMEM_API int gpumem_free(void* ptr);

/* Opens a tag scope on the calling thread: allocations that name no tag get `tag`
 * until the matching gpumem_pop_tag. Scopes nest. NULL: GPUMEM_INVALID_ARGUMENT;
 * "": GPUMEM_INVALID_TAG. */
GPUMEM_API int gpumem_push_tag(const char* tag);

/* Closes the calling thread's innermost scope; GPUMEM_NO_TAG_SCOPE if none is open. */
GPUMEM_API int gpumem_pop_tag(void);

/* -- sleep and wake -------------------------------------------------------------- */

/* Puts `tags` (count 0: every tag) to sleep on every device. Level 1 backs up the
 * "weights" tag to host memory and discards the rest; level 2 discards everything;
 * level 0 discards everything not named as a backup (none here). Addresses stay
 * reserved: after a wake every pointer is valid again, and backed-up bytes are back.
 * Work queued on any stream before the call finishes before memory is released. */
GPUMEM_API int gpumem_sleep(int level, const char* const* tags, size_t count);

/* Wakes `tags` (count 0: every sleeping tag, weights first) on every device. */
GPUMEM_API int gpumem_wake_up(const char* const* tags, size_t count);

/* *sleeping = 1 when any of `tags` (count 0: anything) sleeps on any device. */
GPUMEM_API int gpumem_is_sleeping(const char* const* tags, size_t count, int* sleeping);

/* -- observation ----------------------------------------------------------------- */

/* Every device's statistics and their sum as JSON in *json (free it with
 * gpumem_string_free): {"total": {...}, "devices": [{...}, ...]}, each with the
 * allocated/requested/active/reserved/cached grid (current, peak, allocated, freed)
 * in total and per tag, the counters and the sleep and wake histograms: the same
 * document as the control plane's GET /v1/stats (docs/control.md). */
GPUMEM_API int gpumem_statistics_json(char** json);

/* Every device's memory snapshot as JSON in *json (free it with gpumem_string_free):
 * {"devices": [<docs/snapshot.md's document>, ...]} in device order. */
GPUMEM_API int gpumem_snapshot_json(char** json);

/* Frees a string gpumem returned; NULL is ignored. */
GPUMEM_API void gpumem_string_free(char* text);

/* The calling thread's last failed call's message ("" if none failed yet). Valid
 * until the thread's next failing call. */
GPUMEM_API const char* gpumem_last_error(void);

/* -- PyTorch's CUDAPluggableAllocator ---------------------------------------------
 * torch.cuda.memory.CUDAPluggableAllocator("libgpumem.so", "gpumem_torch_malloc",
 * "gpumem_torch_free"). The calling thread's tag scope chooses the tag, so that
 * `with rt.region("weights"):` tags what PyTorch allocates under it. The stream is
 * `cudaStream_t`, here void* so that gpumem needs no CUDA header; it is not used (see
 * Streams above). malloc returns NULL on failure (PyTorch then raises its
 * OutOfMemoryError); free of an unknown pointer does nothing. Either leaves its
 * error for gpumem_last_error(). */
GPUMEM_API void* gpumem_torch_malloc(ssize_t size, int device, void* stream);
GPUMEM_API void gpumem_torch_free(void* ptr, ssize_t size, int device, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* GPUMEM_H */
