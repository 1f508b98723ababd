#include "replay/timed_backend.hpp"

namespace gpumem::replay {

namespace {

using clock_type = std::chrono::steady_clock;

/// Runs `call` and adds its duration to `total`.
template <class Call>
auto timed(std::chrono::nanoseconds& total, Call&& call) {
  auto start = clock_type::now();
  auto outcome = call();
  total += clock_type::now() - start;
  return outcome;
}

} // namespace

cuda::result<cuda::chunk_handle> timed_backend::create_chunk(int device, std::size_t size) {
  auto chunk = timed(costs_.create_time, [&] { return inner_.create_chunk(device, size); });
  if (chunk) {
    ++costs_.chunks_created;
    costs_.bytes_created += size;
    chunk_sizes_[*chunk] = size;
  }
  return chunk;
}

cuda::status timed_backend::release_chunk(cuda::chunk_handle chunk) {
  auto released = timed(costs_.release_time, [&] { return inner_.release_chunk(chunk); });
  if (auto it = chunk_sizes_.find(chunk); released && it != chunk_sizes_.end()) {
    ++costs_.chunks_released;
    costs_.bytes_released += it->second;
    chunk_sizes_.erase(it);
  }
  return released;
}

cuda::status timed_backend::map(cuda::device_ptr address, std::size_t size,
                                cuda::chunk_handle chunk) {
  return timed(costs_.map_time, [&] { return inner_.map(address, size, chunk); });
}

cuda::status timed_backend::set_access(int device, cuda::device_ptr address, std::size_t size) {
  return timed(costs_.map_time, [&] { return inner_.set_access(device, address, size); });
}

cuda::status timed_backend::unmap(cuda::device_ptr address, std::size_t size) {
  return timed(costs_.release_time, [&] { return inner_.unmap(address, size); });
}

} // namespace gpumem::replay
