// A tour of the device layer on the host backend: the cuMem life cycle in a page.
// Reserve an address range, back part of it with a physical chunk, use it through a
// plain pointer, release the memory while keeping the address, then map new memory
// at the very same address.

#include <cstdio>
#include <cstring>

#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::cuda;

int main() {
  host_backend backend;  // two emulated devices of 4 GiB, 2 MiB granularity
  auto fail = [](const device_error& e) {
    std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  };

  auto base = backend.reserve(0, 64 * MiB);  // address space only: nothing behind it
  if (!base)
    return fail(base.error());
  auto chunk = backend.create_chunk(0, 2 * MiB);  // physical memory, counted on device 0
  if (!chunk)
    return fail(chunk.error());
  if (auto s = backend.map(*base, 2 * MiB, *chunk); !s)
    return fail(s.error());
  if (auto s = backend.set_access(0, *base, 2 * MiB); !s)
    return fail(s.error());

  auto* text = reinterpret_cast<char*>(*base);  // host memory: a plain pointer works
  std::strcpy(text, "hello from a mapped chunk");
  std::printf("%#zx: \"%s\"; device 0 has %s free\n", static_cast<std::size_t>(*base), text,
              format_bytes(backend.memory(0)->free).c_str());

  // Release the memory; the address stays reserved for whoever maps it next.
  (void)backend.unmap(*base, 2 * MiB);
  (void)backend.release_chunk(*chunk);
  std::printf("released: device 0 has %s free\n", format_bytes(backend.memory(0)->free).c_str());

  auto again = backend.create_chunk(0, 2 * MiB);
  if (!again)
    return fail(again.error());
  (void)backend.map(*base, 2 * MiB, *again);
  (void)backend.set_access(0, *base, 2 * MiB);
  std::printf("mapped again at %#zx: fresh memory reads \"%s\" (zeroed)\n",
              static_cast<std::size_t>(*base), text);
  (void)backend.unmap(*base, 2 * MiB);
  (void)backend.release_chunk(*again);
  (void)backend.free_reservation(*base, 64 * MiB);
  return 0;
}
