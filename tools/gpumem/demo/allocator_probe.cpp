#include "allocator_probe.hpp"

namespace gpumem::tool::demo {

using namespace gpumem::messages;

allocator_counters counters_of(demo_context& cx, int device) {
  allocator_counters c;
  auto s = cx.ask<statistics>(cx.rt.allocators()[static_cast<std::size_t>(device)], "stats",
                              stats_atom::value);
  if (s) {
    c.trims = s->trims;
    c.defragmentations = s->defragmentations;
    c.bytes_trimmed = s->bytes_trimmed;
    c.reserved = static_cast<std::uint64_t>(s->total.reserved.current);
    c.cached = static_cast<std::uint64_t>(s->total.cached.current);
  }
  return c;
}

std::optional<device_status> status_of(demo_context& cx, int device) {
  return cx.ask<device_status>(cx.rt.allocators()[static_cast<std::size_t>(device)], "status",
                               status_atom::value);
}

} // namespace gpumem::tool::demo
