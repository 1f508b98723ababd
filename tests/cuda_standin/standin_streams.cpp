// The stand-in's streams, events and asynchronous copies: queued here, run by the
// worker (standin_core.cpp), waited for by the synchronize calls.

#include "standin_state.hpp"

using namespace gpumem::standin;

namespace {

/// The stream a call names, 0 being the context's default stream; nullptr if it is
/// not one of `ctx`'s live streams.
CUstream_st* stream_of(CUctx_st* ctx, CUstream stream) {
  if (stream == nullptr)
    return ctx->null_stream;
  if (stream->destroyed || stream->context != ctx)
    return nullptr;
  return stream;
}

CUresult enqueue_copy(op::kind_t kind, CUdeviceptr device_address, void* host, std::size_t size,
                      CUstream stream) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  CUstream_st* s = stream_of(ctx, stream);
  if (s == nullptr)
    return CUDA_ERROR_INVALID_HANDLE;
  if (host == nullptr || size == 0)
    return CUDA_ERROR_INVALID_VALUE;
  op o{};
  o.kind = kind;
  o.device_address = device_address;
  o.host = host;
  o.size = size;
  s->ops.push_back(o);
  d.work.notify_all();
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (stream == nullptr || (flags != CU_STREAM_DEFAULT && flags != CU_STREAM_NON_BLOCKING))
    return CUDA_ERROR_INVALID_VALUE;
  d.all_streams.push_back(std::make_unique<CUstream_st>());
  CUstream_st* s = d.all_streams.back().get();
  s->context = ctx;
  ctx->streams.push_back(s);
  *stream = s;
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream stream) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (stream == nullptr || stream->destroyed)
    return CUDA_ERROR_INVALID_HANDLE;
  // Queued work still runs (the driver defers the destruction); no new work is taken.
  stream->destroyed = true;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
  driver& d = driver::get();
  std::unique_lock lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  CUstream_st* s = stream == nullptr ? ctx->null_stream : stream;
  if (s->destroyed)
    return CUDA_ERROR_INVALID_HANDLE;
  flush(d, lock, s);
  return s->context->sticky;
}

CUresult cuEventCreate(CUevent* event, unsigned int flags) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (event == nullptr || (flags & ~(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING)) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  d.all_events.push_back(std::make_unique<CUevent_st>());
  d.all_events.back()->context = ctx;
  *event = d.all_events.back().get();
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent event) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (event == nullptr || event->destroyed)
    return CUDA_ERROR_INVALID_HANDLE;
  event->destroyed = true;  // a pending record still completes
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  CUstream_st* s = stream_of(ctx, stream);
  if (event == nullptr || event->destroyed || s == nullptr || event->context != ctx)
    return CUDA_ERROR_INVALID_HANDLE;
  if (d.event_record_fault != CUDA_SUCCESS) {
    const CUresult fault = d.event_record_fault;
    d.event_record_fault = CUDA_SUCCESS;
    return fault;
  }
  op o{};
  o.kind = op::event;
  o.recorded = event;
  ++event->pending;
  s->ops.push_back(o);
  d.work.notify_all();
  return CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent event) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (event == nullptr || event->destroyed)
    return CUDA_ERROR_INVALID_HANDLE;
  if (event->context->sticky != CUDA_SUCCESS)
    return event->context->sticky;
  return event->pending > 0 ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent event) {
  driver& d = driver::get();
  std::unique_lock lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  if (event == nullptr || event->destroyed)
    return CUDA_ERROR_INVALID_HANDLE;
  d.done.wait(lock, [&] { return event->pending == 0 || event->context->sticky != CUDA_SUCCESS; });
  return event->context->sticky;
}

CUresult cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t size, CUstream stream) {
  return enqueue_copy(op::to_host, src, dst, size, stream);
}

CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t size, CUstream stream) {
  return enqueue_copy(op::to_device, dst, const_cast<void*>(src), size, stream);
}

// --- the stand-in's own entry points (cuda_standin.h) --------------------------------

CUresult gpumemStandinLaunch(CUstream stream, CUdeviceptr ptr, size_t size, int fill) {
  driver& d = driver::get();
  std::lock_guard lock(d.mutex);
  CUctx_st* ctx = nullptr;
  if (const CUresult rc = enter(d, ctx); rc != CUDA_SUCCESS)
    return rc;
  CUstream_st* s = stream_of(ctx, stream);
  if (s == nullptr)
    return CUDA_ERROR_INVALID_HANDLE;
  if (size == 0 || !accessible(d, ptr, size, ctx->device))
    return CUDA_ERROR_INVALID_VALUE;
  op o{};
  o.kind = op::kernel;
  o.device_address = ptr;
  o.size = size;
  o.fill = fill;
  s->ops.push_back(o);
  return CUDA_SUCCESS;
}

} // extern "C"
