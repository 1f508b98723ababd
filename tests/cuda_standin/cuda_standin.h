#pragma once
// A stand-in for the CUDA driver (libcuda.so.1) that runs on host memory and
// enforces the driver's documented rules, so that the real CUDA backend can be tested
// without a GPU. Built as build/<preset>/cuda_standin/libcuda.so.1; point the backend
// at it with GPUMEM_CUDA_LIBRARY=<that path>.
//
// What it enforces (from cuda.h 13.0 and the VMM documentation):
// - a current context on the calling thread for every call that needs one
//   (CUDA_ERROR_INVALID_CONTEXT), and the stream's own context for async copies;
// - cuMemMap's offset must be zero, its flags zero, the range inside a reservation
//   and unmapped; cuMemUnmap covers whole mappings; sizes are multiples of the
//   granularity (2 MiB);
// - sticky errors: once a context meets one (a faulting copy, a copy from memory its
//   device may not access, an unmap under a running kernel), every later call in that
//   context returns the same error, as "the process must be terminated" says;
// - cuMemRelease of a mapped chunk frees it only at its last unmap;
// - streams, events and copies complete asynchronously, on a worker thread, in order
//   per stream; cuStreamSynchronize, cuCtxSynchronize, cuEventQuery and
//   cuEventSynchronize wait or poll as documented;
// - a primary context's pinned host memory dies with it (last cuDevicePrimaryCtxRelease).
//
// Where it guesses (it is not a GPU):
// - a "kernel" (gpumemStandinLaunch) runs until its stream or its context is
//   synchronized, however long that is; a real kernel ends on its own. Its bytes land
//   when it ends, so a copy that reads its range before then sees the old bytes.
// - cuMemUnmap over a running kernel's range fails at once with the sticky
//   CUDA_ERROR_ILLEGAL_ADDRESS and unmaps nothing; a GPU would unmap, and the kernel
//   would fault (Xid 31) and the error surface at the next synchronizing call.
// - undefined behaviour (cuMemRelease of a handle it never made, cuMemFreeHost of
//   memory whose context is gone) aborts the process with a message.
// - which calls need a current context: here every cuMem*, cuStream*, cuEvent* call
//   and cuCtxSynchronize, but not the device queries, cuMemGetAllocationGranularity or
//   cuCtxSetCurrent; async copies and event records also need the stream's own
//   context current (CUDA_ERROR_INVALID_HANDLE otherwise).
// - cuMemAddressFree of a range that still holds mappings is CUDA_ERROR_INVALID_VALUE.
// - every device can access every peer; every device supports VMM, POSIX file
//   descriptor handles and GPUDirect RDMA with VMM; timing attributes are absent.
// - how many devices and how much memory: GPUMEM_STANDIN_DEVICES (default 2) and
//   GPUMEM_STANDIN_DEVICE_MIB (default 1024), read by cuInit.
//
// The entry points below are the stand-in's own, for tests only (dlsym them from the
// library the backend loaded). All return CUDA_SUCCESS or the error a driver call
// would give.

#include <cuda.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What a launched kernel does to memory: marks [ptr, ptr + size) busy on `stream`
/// (0: the current context's default stream) until that stream or its context is
/// synchronized; then, if fill >= 0, writes that byte over the range.
CUresult gpumemStandinLaunch(CUstream stream, CUdeviceptr ptr, size_t size, int fill);

/// The next copy the worker runs fails with `code` (a sticky one poisons the context).
CUresult gpumemStandinInjectCopyFault(CUresult code);

/// The next cuEventRecord fails with `code` and records nothing.
CUresult gpumemStandinFailNextEventRecord(CUresult code);

/// While held, copies wait in their streams until the stream or context is synchronized.
CUresult gpumemStandinHoldCopies(int hold);

/// A device whose primary context cannot be retained (busy or exclusive elsewhere):
/// cuDevicePrimaryCtxRetain answers CUDA_ERROR_DEVICE_UNAVAILABLE.
CUresult gpumemStandinSetUnavailable(int device, int unavailable);

/// How many driver calls that need a context have been made (to check that none are).
unsigned long long gpumemStandinContextCalls(void);

/// Clears sticky errors, injected faults, holds and unavailable devices, for the next
/// test in the same process. CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE while one is retained.
CUresult gpumemStandinReset(void);

#ifdef __cplusplus
}
#endif
