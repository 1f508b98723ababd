// The C functions of gpumem.h: argument checks, the process's runtime and client,
// errors turned into codes and the calling thread's last error text. No exception
// crosses the C boundary.

#include "gpumem.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "c_state.hpp"
#include "gpumem/messages/json.hpp"

namespace gpumem::c_abi {

state& global() {
  static state s;
  return s;
}

namespace {

static_assert(GPUMEM_NODE_UNREACHABLE == static_cast<int>(messages::last_errc),
              "gpumem.h's codes 1..20 are the protocol's");
static_assert(GPUMEM_TIMEOUT == static_cast<int>(messages::gpumem_errc::timeout));
static_assert(GPUMEM_DOUBLE_FREE == static_cast<int>(messages::gpumem_errc::double_free));

thread_local std::string last_error_text;

int fail(const char* fn, int code, const std::string& text) {
  last_error_text = std::string(fn) + ": " + text;
  return code;
}

int fail(const char* fn, const client::failure& f) {
  return fail(fn, static_cast<int>(f.code), f.to_string());
}

/// Runs `body`, turning any exception into GPUMEM_INTERNAL.
template <class Body>
int guarded(const char* fn, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return fail(fn, GPUMEM_INTERNAL, e.what());
  } catch (...) {
    return fail(fn, GPUMEM_INTERNAL, "an unknown exception");
  }
}

/// Runs `body` with the client under the shared lock; GPUMEM_NOT_STARTED without one.
template <class Body>
int with_client(const char* fn, Body&& body) noexcept {
  return guarded(fn, [&] {
    auto& s = global();
    std::shared_lock<std::shared_mutex> lock{s.lifecycle};
    if (!s.client)
      return fail(fn, GPUMEM_NOT_STARTED, "no runtime: call gpumem_start or gpumem_attach first");
    return body(*s.client);
  });
}

/// The tags of a C array; false (and the error set) for a null array or element.
bool read_tags(const char* fn, const char* const* tags, size_t count,
               std::vector<std::string>& out, int& code) {
  if (count > 0 && tags == nullptr) {
    code = fail(fn, GPUMEM_INVALID_ARGUMENT, "tags is NULL but count is " + std::to_string(count));
    return false;
  }
  for (size_t i = 0; i < count; ++i) {
    if (tags[i] == nullptr) {
      code = fail(fn, GPUMEM_INVALID_ARGUMENT, "tags[" + std::to_string(i) + "] is NULL");
      return false;
    }
    out.emplace_back(tags[i]);
  }
  return true;
}

char* copy_out(const std::string& text) {
  auto* p = static_cast<char*>(std::malloc(text.size() + 1));
  if (p != nullptr)
    std::memcpy(p, text.c_str(), text.size() + 1);
  return p;
}

int start_with(const char* fn, std::vector<std::string> args) {
  auto& s = global();
  std::unique_lock<std::shared_mutex> lock{s.lifecycle};
  if (s.client)
    return fail(fn, GPUMEM_ALREADY_STARTED, "a runtime is running: gpumem_stop first");
  std::string error;
  auto made = start_hosted(args, error);
  if (!made.runtime)
    return fail(fn, GPUMEM_START_FAILED, error);
  s.hosted = std::move(made.runtime);
  s.client = std::make_unique<client::blocking_client>(std::move(made.endpoint));
  s.devices = made.devices;
  return int{GPUMEM_OK};
}

int do_malloc(const char* fn, size_t size, int device, const char* tag, void** ptr) {
  if (ptr == nullptr)
    return fail(fn, GPUMEM_INVALID_ARGUMENT, "ptr is NULL");
  *ptr = nullptr;
  if (tag != nullptr && *tag == '\0')
    return fail(fn, GPUMEM_INVALID_TAG, "the tag must not be empty (NULL: the thread's scope)");
  if (device < messages::any_device)
    return fail(fn, GPUMEM_UNKNOWN_DEVICE,
                "device " + std::to_string(device) + " (a device number, or -1 for any)");
  return with_client(fn, [&](const client::blocking_client& c) {
    auto r = c.allocate(client::allocation_spec{size, tag ? tag : "",
                                                messages::strategy::configured, 0, device});
    if (!r)
      return fail(fn, r.error());
    auto& s = global();
    {
      std::lock_guard<std::mutex> guard{s.regions_mutex};
      s.freed.erase(r->address);
      s.live.emplace(r->address, *r);
    }
    *ptr = reinterpret_cast<void*>(r->address);
    return int{GPUMEM_OK};
  });
}

int do_free(const char* fn, void* ptr) {
  if (ptr == nullptr)
    return fail(fn, GPUMEM_INVALID_ARGUMENT, "ptr is NULL");
  return with_client(fn, [&](const client::blocking_client& c) {
    auto& s = global();
    const auto address = reinterpret_cast<std::uint64_t>(ptr);
    messages::region_handle handle;
    {
      std::lock_guard<std::mutex> guard{s.regions_mutex};
      auto it = s.live.find(address);
      if (it == s.live.end()) {
        std::ostringstream text;
        text << ptr << (s.freed.count(address) ? " was freed already" : " was not allocated by gpumem");
        return fail(fn, s.freed.count(address) ? GPUMEM_DOUBLE_FREE : GPUMEM_UNKNOWN_REGION,
                    text.str());
      }
      handle = it->second;
      s.live.erase(it);
      s.freed.insert(address);  // a concurrent second free is a double free from here
    }
    auto r = c.deallocate(handle);
    if (!r) {
      std::lock_guard<std::mutex> guard{s.regions_mutex};
      s.freed.erase(address);  // not freed: the pointer stays the caller's
      s.live.emplace(address, handle);
      return fail(fn, r.error());
    }
    return int{GPUMEM_OK};
  });
}

} // namespace
} // namespace gpumem::c_abi

using namespace gpumem;
using namespace gpumem::c_abi;

extern "C" {

int gpumem_start(const char* options) {
  const char* const fn = "gpumem_start";
  return guarded(fn, [&] {
    if (options == nullptr)
      return fail(fn, GPUMEM_INVALID_ARGUMENT, "options is NULL (\"\" for the defaults)");
    std::istringstream in{options};
    std::vector<std::string> args;
    for (std::string word; in >> word;)
      args.push_back(word);
    return start_with(fn, std::move(args));
  });
}

int gpumem_start_from_file(const char* path) {
  const char* const fn = "gpumem_start_from_file";
  return guarded(fn, [&] {
    if (path == nullptr || *path == '\0')
      return fail(fn, GPUMEM_INVALID_ARGUMENT, "path is NULL or empty");
    return start_with(fn, {std::string("--config-file=") + path});
  });
}

int gpumem_attach(const void* endpoint) {
  const char* const fn = "gpumem_attach";
  return guarded(fn, [&] {
    if (endpoint == nullptr)
      return fail(fn, GPUMEM_INVALID_ARGUMENT, "endpoint is NULL");
    const auto& e = *static_cast<const client::endpoint*>(endpoint);
    if (e.system == nullptr || !e.balancer || !e.monitor)
      return fail(fn, GPUMEM_INVALID_ARGUMENT,
                  "the endpoint lacks its actor system, balancer or monitor");
    auto& s = global();
    std::unique_lock<std::shared_mutex> lock{s.lifecycle};
    if (s.client)
      return fail(fn, GPUMEM_ALREADY_STARTED, "a runtime is running: gpumem_stop first");
    s.client = std::make_unique<client::blocking_client>(e);
    s.devices = static_cast<int>(e.allocators.size());
    return int{GPUMEM_OK};
  });
}

int gpumem_stop(void) {
  const char* const fn = "gpumem_stop";
  return guarded(fn, [&] {
    auto& s = global();
    std::unique_lock<std::shared_mutex> lock{s.lifecycle};
    if (!s.client)
      return fail(fn, GPUMEM_NOT_STARTED, "no runtime to stop");
    s.client.reset();
    s.hosted.reset();
    s.devices = 0;
    std::lock_guard<std::mutex> guard{s.regions_mutex};
    s.live.clear();
    s.freed.clear();
    return int{GPUMEM_OK};
  });
}

int gpumem_is_started(void) {
  auto& s = global();
  std::shared_lock<std::shared_mutex> lock{s.lifecycle};
  return s.client ? 1 : 0;
}

int gpumem_device_count(int* count) {
  const char* const fn = "gpumem_device_count";
  if (count == nullptr)
    return fail(fn, GPUMEM_INVALID_ARGUMENT, "count is NULL");
  return with_client(fn, [&](const client::blocking_client&) {
    *count = global().devices;
    return int{GPUMEM_OK};
  });
}

int gpumem_malloc(size_t size, int device, const char* tag, void** ptr) {
  const char* const fn = "gpumem_malloc";
  return guarded(fn, [&] { return do_malloc(fn, size, device, tag, ptr); });
}

int gpumem_free(void* ptr) {
  const char* const fn = "gpumem_free";
  return guarded(fn, [&] { return do_free(fn, ptr); });
}

int gpumem_push_tag(const char* tag) {
  const char* const fn = "gpumem_push_tag";
  return guarded(fn, [&] {
    if (tag == nullptr)
      return fail(fn, GPUMEM_INVALID_ARGUMENT, "tag is NULL");
    if (*tag == '\0')
      return fail(fn, GPUMEM_INVALID_TAG, "the tag must not be empty");
    client::push_tag(tag);
    return int{GPUMEM_OK};
  });
}

int gpumem_pop_tag(void) {
  const char* const fn = "gpumem_pop_tag";
  return guarded(fn, [&] {
    if (!client::pop_tag())
      return fail(fn, GPUMEM_NO_TAG_SCOPE, "no tag scope is open on this thread");
    return int{GPUMEM_OK};
  });
}

int gpumem_sleep(int level, const char* const* tags, size_t count) {
  const char* const fn = "gpumem_sleep";
  return guarded(fn, [&] {
    std::vector<std::string> names;
    int code = GPUMEM_OK;
    if (!read_tags(fn, tags, count, names, code))
      return code;
    return with_client(fn, [&](const client::blocking_client& c) {
      auto r = c.sleep(level, std::move(names));
      return r ? GPUMEM_OK : fail(fn, r.error());
    });
  });
}

int gpumem_wake_up(const char* const* tags, size_t count) {
  const char* const fn = "gpumem_wake_up";
  return guarded(fn, [&] {
    std::vector<std::string> names;
    int code = GPUMEM_OK;
    if (!read_tags(fn, tags, count, names, code))
      return code;
    return with_client(fn, [&](const client::blocking_client& c) {
      auto r = c.wake_up(std::move(names));
      return r ? GPUMEM_OK : fail(fn, r.error());
    });
  });
}

int gpumem_is_sleeping(const char* const* tags, size_t count, int* sleeping) {
  const char* const fn = "gpumem_is_sleeping";
  return guarded(fn, [&] {
    if (sleeping == nullptr)
      return fail(fn, GPUMEM_INVALID_ARGUMENT, "sleeping is NULL");
    std::vector<std::string> names;
    int code = GPUMEM_OK;
    if (!read_tags(fn, tags, count, names, code))
      return code;
    return with_client(fn, [&](const client::blocking_client& c) {
      auto r = c.is_sleeping(std::move(names));
      if (!r)
        return fail(fn, r.error());
      *sleeping = *r ? 1 : 0;
      return int{GPUMEM_OK};
    });
  });
}

int gpumem_statistics_json(char** json) {
  const char* const fn = "gpumem_statistics_json";
  if (json == nullptr)
    return fail(fn, GPUMEM_INVALID_ARGUMENT, "json is NULL");
  *json = nullptr;
  return with_client(fn, [&](const client::blocking_client& c) {
    auto r = c.statistics();
    if (!r)
      return fail(fn, r.error());
    *json = copy_out(messages::to_json(*r).dump());
    return *json ? GPUMEM_OK : fail(fn, GPUMEM_INTERNAL, "out of host memory");
  });
}

int gpumem_snapshot_json(char** json) {
  const char* const fn = "gpumem_snapshot_json";
  if (json == nullptr)
    return fail(fn, GPUMEM_INVALID_ARGUMENT, "json is NULL");
  *json = nullptr;
  return with_client(fn, [&](const client::blocking_client& c) {
    std::string text = "{\"devices\":[";
    for (int d = 0; d < global().devices; ++d) {
      auto r = c.snapshot(d);
      if (!r)
        return fail(fn, r.error());
      text += (d ? "," : "") + r->json;
    }
    text += "]}";
    *json = copy_out(text);
    return *json ? GPUMEM_OK : fail(fn, GPUMEM_INTERNAL, "out of host memory");
  });
}

void gpumem_string_free(char* text) {
  std::free(text);
}

const char* gpumem_last_error(void) {
  return last_error_text.c_str();
}

void* gpumem_torch_malloc(ssize_t size, int device, void* /*stream*/) {
  const char* const fn = "gpumem_torch_malloc";
  void* ptr = nullptr;
  guarded(fn, [&] {
    if (size <= 0)
      return fail(fn, size == 0 ? GPUMEM_ZERO_SIZE : GPUMEM_INVALID_ARGUMENT,
                  "size " + std::to_string(size));
    return do_malloc(fn, static_cast<size_t>(size), device, nullptr, &ptr);
  });
  return ptr;
}

void gpumem_torch_free(void* ptr, ssize_t /*size*/, int /*device*/, void* /*stream*/) {
  const char* const fn = "gpumem_torch_free";
  (void)guarded(fn, [&] { return do_free(fn, ptr); });
}

} // extern "C"
