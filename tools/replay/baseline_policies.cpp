#include "replay/baseline_policies.hpp"

#include <iterator>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::replay {

namespace {

using core::engine_errc;
using core::engine_error;
using handle_result = core::engine_result<std::optional<std::uint64_t>>;

engine_error unknown_handle(std::uint64_t handle) {
  return engine_error(engine_errc::unknown_region,
                      "no live simulated allocation " + std::to_string(handle));
}

// CUDACachingAllocator.cpp's constants.
constexpr std::size_t min_block = 512;             // kMinBlockSize
constexpr std::size_t small_size = 1 * MiB;        // kSmallSize
constexpr std::size_t small_buffer = 2 * MiB;      // kSmallBuffer
constexpr std::size_t large_buffer = 20 * MiB;     // kLargeBuffer
constexpr std::size_t min_large_alloc = 10 * MiB;  // kMinLargeAlloc
constexpr std::size_t round_large = 2 * MiB;       // kRoundLarge

std::size_t round_size(std::size_t size) {
  return size < min_block ? min_block : cuda::round_up(size, min_block);
}

/// The segment a request that found no cached block makes (get_allocation_size).
std::size_t segment_size(std::size_t rounded) {
  if (rounded <= small_size)
    return small_buffer;
  if (rounded < min_large_alloc)
    return large_buffer;
  return cuda::round_up(rounded, round_large);
}

} // namespace

// --- vLLM-style -----------------------------------------------------------------

vllm_style_policy::vllm_style_policy(std::size_t capacity, std::size_t granularity)
  : capacity_(capacity), granularity_(granularity) {}

handle_result vllm_style_policy::allocate(std::size_t size, const std::string&) {
  auto rounded = cuda::round_up(size, granularity_);
  if (rounded > capacity_ - physical_)
    return std::optional<std::uint64_t>{};
  physical_ += rounded;
  ++churn_.created;
  churn_.bytes_created += rounded;
  auto handle = next_handle_++;
  rounded_.emplace(handle, rounded);
  return std::optional<std::uint64_t>{handle};
}

core::engine_result<void> vllm_style_policy::deallocate(std::uint64_t handle) {
  auto it = rounded_.find(handle);
  if (it == rounded_.end())
    return unknown_handle(handle);
  physical_ -= it->second;
  ++churn_.released;
  rounded_.erase(it);
  return {};
}

// --- PyTorch caching --------------------------------------------------------------

pytorch_caching_policy::pytorch_caching_policy(std::size_t capacity) : capacity_(capacity) {}

handle_result pytorch_caching_policy::allocate(std::size_t size, const std::string&) {
  auto rounded = round_size(size);
  bool small = rounded <= small_size;
  auto& free_blocks = pool(small);
  std::uint64_t address = 0;
  if (auto best = free_blocks.lower_bound({rounded, 0}); best != free_blocks.end()) {
    address = best->second;
    free_blocks.erase(best);
    ++churn_.reused;
  } else {
    auto segment = segment_size(rounded);
    if (segment > capacity_ - reserved_)
      release_cached_segments();  // what PyTorch does before it reports an OOM
    if (segment > capacity_ - reserved_)
      return std::optional<std::uint64_t>{};
    address = new_segment(segment, small);
  }
  split(address, rounded);
  blocks_[address].allocated = true;
  return std::optional<std::uint64_t>{address};
}

core::engine_result<void> pytorch_caching_policy::deallocate(std::uint64_t handle) {
  auto it = blocks_.find(handle);
  if (it == blocks_.end() || !it->second.allocated)
    return unknown_handle(handle);
  it->second.allocated = false;
  auto& free_blocks = pool(it->second.small);
  auto mergeable = [&](auto neighbour) {
    return !neighbour->second.allocated && neighbour->second.segment == it->second.segment;
  };
  if (auto next = std::next(it); next != blocks_.end() && mergeable(next)) {
    free_blocks.erase({next->second.size, next->first});
    it->second.size += next->second.size;
    blocks_.erase(next);
  }
  if (it != blocks_.begin()) {
    if (auto previous = std::prev(it); mergeable(previous)) {
      free_blocks.erase({previous->second.size, previous->first});
      previous->second.size += it->second.size;
      blocks_.erase(it);
      it = previous;
    }
  }
  free_blocks.insert({it->second.size, it->first});
  return {};
}

void pytorch_caching_policy::release_cached_segments() {
  for (auto segment = segments_.begin(); segment != segments_.end();) {
    auto whole = blocks_.find(segment->first);
    if (whole->second.allocated || whole->second.size != segment->second) {
      ++segment;
      continue;
    }
    pool(whole->second.small).erase({whole->second.size, whole->first});
    blocks_.erase(whole);
    reserved_ -= segment->second;
    ++churn_.released;
    segment = segments_.erase(segment);
  }
}

std::uint64_t pytorch_caching_policy::new_segment(std::size_t size, bool small) {
  auto address = next_address_;
  next_address_ += size;
  segments_.emplace(address, size);
  blocks_.emplace(address, block{size, address, small, false});
  reserved_ += size;
  ++churn_.created;
  churn_.bytes_created += size;
  return address;
}

/// Cuts a free block down to `size`, returning the rest to its pool when the rest
/// is worth keeping apart (should_split).
void pytorch_caching_policy::split(std::uint64_t address, std::size_t size) {
  auto& b = blocks_[address];
  auto remaining = b.size - size;
  if (b.small ? remaining < min_block : remaining <= small_size)
    return;
  b.size = size;
  blocks_.emplace(address + size, block{remaining, b.segment, b.small, false});
  pool(b.small).insert({remaining, address + size});
}

} // namespace gpumem::replay
