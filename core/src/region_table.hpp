#pragma once
// Every live region: its description, where its block is, and its host backup while
// it sleeps. Ids count up from 1 and are never reused, so a freed id is told apart
// from one never issued. Lookup by id and by start address is one hash probe.

#include <cstdint>
#include <optional>
#include <vector>

#include "block_index.hpp"
#include "gpumem/core/engine_types.hpp"
#include "slot_index.hpp"

namespace gpumem::core::detail {

/// A region as the engine keeps it: one cache line, the tag as its number.
struct alignas(64) region_record {
  region_id id = 0;
  cuda::device_ptr address = 0;
  std::size_t size = 0;
  std::size_t requested = 0;
  std::uint64_t last_use_ns = 0;
  std::byte* backup = nullptr;  // the host copy while backed up
  std::uint32_t pool = 0;
  std::uint32_t block = no_block;
  tag_id tag = 0;
  strategy how = strategy::pooled;
  region_state state = region_state::resident;
  bool contents_defined = true;
  bool live = false;
};
static_assert(sizeof(region_record) == 64);

class region_table {
public:
  /// Files a new region: `r`'s id is assigned here, the rest is the caller's. Returns
  /// its slot.
  std::uint32_t insert(const region_record& r);
  void erase(std::uint32_t slot);

  std::optional<std::uint32_t> find(region_id id) const {
    return by_id_.find(id, [&](std::uint32_t slot) { return records_[slot].id == id; });
  }
  std::optional<std::uint32_t> find_at(cuda::device_ptr address) const {
    return by_address_.find(address,
                            [&](std::uint32_t slot) { return records_[slot].address == address; });
  }
  /// Starts loading what insert() will touch in the id index (see slot_index).
  void prefetch_insert() const { by_id_.prefetch(next_id_); }
  /// Starts loading what insert() or erase() will touch in the address index.
  void prefetch_address(cuda::device_ptr address) const { by_address_.prefetch(address); }

  /// Whether `id` was handed out at some point (live or freed).
  bool issued(region_id id) const noexcept { return id != 0 && id < next_id_; }

  region_record& at(std::uint32_t slot) { return records_[slot]; }
  const region_record& at(std::uint32_t slot) const { return records_[slot]; }
  std::size_t size() const noexcept { return by_id_.size(); }

  /// Calls f(slot, record) for every live region, in slot order.
  template <class F>
  void for_each(F&& f) {
    for (std::uint32_t s = 0; s < records_.size(); ++s)
      if (records_[s].live)
        f(s, records_[s]);
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t s = 0; s < records_.size(); ++s)
      if (records_[s].live)
        f(s, records_[s]);
  }

private:
  std::vector<region_record> records_;
  std::uint32_t spare_ = no_block;  // the first free slot; each names the next in `block`
  slot_index<sequential_key_hash> by_id_;
  slot_index<spread_key_hash> by_address_;
  region_id next_id_ = 1;
};

} // namespace gpumem::core::detail
