#include "outside_memory.hpp"

#include <algorithm>

#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::tool::demo {

double used_fraction(cuda::device_backend& backend, int device) {
  auto m = backend.memory(device);
  if (!m || m->total == 0)
    return 0;
  return 1.0 - static_cast<double>(m->free) / static_cast<double>(m->total);
}

std::uint64_t take_until(cuda::device_backend& backend, int device, double target,
                         std::size_t granularity, std::vector<cuda::chunk_handle>& taken) {
  std::uint64_t bytes = 0;
  while (true) {
    auto m = backend.memory(device);
    if (!m || m->total == 0)
      break;
    auto want_used = static_cast<std::size_t>(target * static_cast<double>(m->total));
    auto used = m->total - m->free;
    if (used >= want_used)
      break;
    auto piece = std::min<std::size_t>(32 * MiB, cuda::round_up(want_used - used, granularity));
    piece = std::min(piece, m->free / granularity * granularity);
    if (piece == 0)
      break;
    auto chunk = backend.create_chunk(device, piece);
    if (!chunk)
      break;
    taken.push_back(*chunk);
    bytes += piece;
  }
  return bytes;
}

std::uint64_t give_back(cuda::device_backend& backend, std::vector<cuda::chunk_handle>& taken) {
  std::uint64_t n = taken.size();
  for (auto c : taken)
    (void)backend.release_chunk(c);
  taken.clear();
  return n;
}

} // namespace gpumem::tool::demo
