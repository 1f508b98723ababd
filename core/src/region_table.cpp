#include "region_table.hpp"

namespace gpumem::core::detail {

std::uint32_t region_table::insert(const region_fields& info, std::uint32_t pool,
                                   std::uint32_t block) {
  std::uint32_t slot;
  if (!spare_.empty()) {
    slot = spare_.back();
    spare_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(records_.size());
    records_.emplace_back();
  }
  auto& r = records_[slot];
  r.info = info;
  r.info.id = next_id_++;
  r.pool = pool;
  r.block = block;
  r.backup = nullptr;
  r.live = true;
  by_id_.insert(r.info.id, slot);
  by_address_.insert(r.info.address, slot);
  return slot;
}

void region_table::erase(std::uint32_t slot) {
  auto& r = records_[slot];
  by_id_.erase(r.info.id);
  by_address_.erase(r.info.address);
  r.live = false;
  r.backup = nullptr;
  spare_.push_back(slot);
}

} // namespace gpumem::core::detail
