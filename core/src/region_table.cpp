#include "region_table.hpp"

namespace gpumem::core::detail {

std::uint32_t region_table::insert(const region_record& r) {
  std::uint32_t slot;
  if (spare_ != no_block) {
    slot = spare_;
    spare_ = records_[slot].block;
  } else {
    slot = static_cast<std::uint32_t>(records_.size());
    records_.emplace_back();
  }
  auto& stored = records_[slot];
  stored = r;
  stored.id = next_id_++;
  stored.live = true;
  by_id_.insert(stored.id, slot);
  by_address_.insert(stored.address, slot);
  return slot;
}

void region_table::erase(std::uint32_t slot) {
  auto& r = records_[slot];
  by_id_.erase(r.id, slot);
  by_address_.erase(r.address, slot);
  r.live = false;
  r.backup = nullptr;
  r.block = spare_;
  spare_ = slot;
}

} // namespace gpumem::core::detail
