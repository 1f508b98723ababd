#pragma once
// Two allocators that gpumem is compared with, simulated on sizes alone (no device):
// each holds "physical" bytes as its model says the real one would.

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "replay/replayer.hpp"

namespace gpumem::replay {

/// vLLM-style (its CuMemAllocator): every allocation gets its own physical memory,
/// rounded up to the granularity, and gives it back on free. No cache, no sharing.
class vllm_style_policy final : public replay_target {
public:
  explicit vllm_style_policy(std::size_t capacity, std::size_t granularity = 2 * MiB);

  core::engine_result<std::optional<std::uint64_t>> allocate(std::size_t size,
                                                             const std::string& tag) override;
  core::engine_result<void> deallocate(std::uint64_t handle) override;
  std::size_t physical_bytes() const override { return physical_; }
  churn_counts churn() const override { return churn_; }

private:
  std::size_t capacity_;
  std::size_t granularity_;
  std::size_t physical_ = 0;
  churn_counts churn_;  // every allocation creates, every free releases
  std::uint64_t next_handle_ = 1;
  std::unordered_map<std::uint64_t, std::size_t> rounded_;  // handle -> physical bytes
};

/// PyTorch's CUDA caching allocator with its default settings (no max_split_size,
/// no expandable segments), by the rules of CUDACachingAllocator.cpp:
///  - sizes round up to 512 B;
///  - up to 1 MiB is the small pool, served from 2 MiB segments; larger requests are
///    the large pool: under 10 MiB from 20 MiB segments, from 10 MiB up a segment of
///    the size rounded up to 2 MiB;
///  - the best-fitting cached free block of the pool is used first, split when the
///    remainder is at least 512 B (small pool) or more than 1 MiB (large pool);
///  - freed blocks coalesce with free neighbours of the same segment;
///  - segments stay reserved; only when a new one would exceed capacity are all
///    wholly free segments released (as on an OOM, or empty_cache()), and the
///    segment tried once more before the allocation fails.
class pytorch_caching_policy final : public replay_target {
public:
  explicit pytorch_caching_policy(std::size_t capacity);

  core::engine_result<std::optional<std::uint64_t>> allocate(std::size_t size,
                                                             const std::string& tag) override;
  core::engine_result<void> deallocate(std::uint64_t handle) override;
  std::size_t physical_bytes() const override { return reserved_; }
  churn_counts churn() const override { return churn_; }
  /// empty_cache(): releases every wholly free segment.
  void release_cached_segments();

private:
  struct block {
    std::size_t size = 0;
    std::uint64_t segment = 0;  // the segment's address
    bool small = false;         // its pool
    bool allocated = false;
  };
  using free_set = std::set<std::pair<std::size_t, std::uint64_t>>;  // (size, address)

  free_set& pool(bool small) { return small ? free_small_ : free_large_; }
  std::uint64_t new_segment(std::size_t size, bool small);
  void split(std::uint64_t address, std::size_t size);

  std::size_t capacity_;
  std::size_t reserved_ = 0;
  std::uint64_t next_address_ = 0x10000000;  // segment addresses, never reused
  std::map<std::uint64_t, block> blocks_;    // by address: neighbours sit side by side
  std::map<std::uint64_t, std::size_t> segments_;
  free_set free_small_, free_large_;
  churn_counts churn_;  // segments; reused: allocations a cached block served
};

} // namespace gpumem::replay
