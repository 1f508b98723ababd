#include "gpumem/actors/deadline_table.hpp"

#include <utility>

namespace gpumem::actors {

deadline_table::ticket deadline_table::add(clock::time_point deadline,
                                           std::function<void()> on_expiry) {
  entries_.push_back({deadline, std::move(on_expiry), true});
  ++open_;
  return first_ + entries_.size() - 1;
}

bool deadline_table::settle(ticket t) {
  if (t < first_ || t - first_ >= entries_.size())
    return false;  // expired and dropped long ago
  auto& e = entries_[t - first_];
  if (!e.open)
    return false;
  e.open = false;
  e.on_expiry = nullptr;
  --open_;
  drop_closed_front();
  return true;
}

std::size_t deadline_table::expire(clock::time_point now) {
  std::size_t expired = 0;
  drop_closed_front();
  while (!entries_.empty() && entries_.front().deadline <= now) {
    auto on_expiry = std::move(entries_.front().on_expiry);
    entries_.pop_front();
    ++first_;
    --open_;
    ++expired;
    if (on_expiry)
      on_expiry();  // may add entries at the back
    drop_closed_front();
  }
  return expired;
}

std::size_t deadline_table::expire_all() {
  return expire(clock::time_point::max());
}

void deadline_table::drop_closed_front() {
  while (!entries_.empty() && !entries_.front().open) {
    entries_.pop_front();
    ++first_;
  }
}

} // namespace gpumem::actors
