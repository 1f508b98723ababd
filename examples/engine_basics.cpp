// The engine alone, no actors: create one over the host backend, allocate, sleep at
// level 1 (the weights' bytes go to host memory, the rest is discarded), wake, and
// find the weights' bytes back at the same address.

#include <cstdio>
#include <cstring>

#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;

int main() {
  cuda::host_backend backend;  // two emulated devices in host memory
  auto made = core::engine::create(backend);  // device 0, default settings
  if (!made) {
    std::fprintf(stderr, "%s\n", made.error().to_string().c_str());
    return 1;
  }
  auto& engine = *made.value();

  auto weights = engine.allocate({.size = 8 * MiB, .tag = "weights"});
  auto kv = engine.allocate({.size = 32 * MiB, .tag = "kv_cache"});
  if (!weights || !kv)
    return 1;
  auto* bytes = reinterpret_cast<char*>(weights->address);  // host memory: a plain pointer
  std::strcpy(bytes, "the model's weights");

  auto slept = engine.sleep(core::sleep_policy::level(1));
  if (!slept)
    return 1;
  std::printf("asleep: %zu B backed up, %zu B released\n", slept->bytes_backed_up,
              slept->bytes_released);

  if (!engine.wake_up())
    return 1;
  std::printf("awake at %#zx: \"%s\"\n", static_cast<std::size_t>(weights->address), bytes);
  (void)engine.deallocate(kv->id);
  (void)engine.deallocate(weights->id);
  return std::strcmp(bytes, "the model's weights") == 0 ? 0 : 1;
}
