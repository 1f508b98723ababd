#pragma once
// An open-addressing hash map from non-zero 64-bit keys to 32-bit values: linear
// probing, deletion by backward shift (no tombstones), half full at most. On the
// allocation hot path it replaces std::unordered_map's node allocations and pointer
// chasing with one probe into a flat array.

#include <cstdint>
#include <optional>
#include <vector>

namespace gpumem::core::detail {

class flat_u64_map {
public:
  flat_u64_map() : slots_(16) {}

  std::optional<std::uint32_t> find(std::uint64_t key) const {
    if (key == 0)
      return std::nullopt;  // 0 marks an empty slot; it is never a key
    for (auto i = home(key);; i = next(i)) {
      if (slots_[i].key == key)
        return slots_[i].value;
      if (slots_[i].key == 0)
        return std::nullopt;
    }
  }

  /// Inserts or overwrites.
  void insert(std::uint64_t key, std::uint32_t value) {
    if ((size_ + 1) * 2 > slots_.size())
      grow();
    place(key, value);
  }

  bool erase(std::uint64_t key) {
    auto i = home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == 0)
        return false;
      i = next(i);
    }
    // Shift later members of the probe run back so that no lookup stops early.
    for (auto j = next(i);; j = next(j)) {
      if (slots_[j].key == 0)
        break;
      auto h = home(slots_[j].key);
      bool movable = (j > i) ? (h <= i || h > j) : (h <= i && h > j);
      if (movable) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = slot{};
    --size_;
    return true;
  }

  std::size_t size() const noexcept { return size_; }

private:
  struct slot {
    std::uint64_t key = 0;
    std::uint32_t value = 0;
  };

  std::size_t home(std::uint64_t key) const {
    key ^= key >> 33;  // murmur3's finaliser: addresses share their low bits
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return static_cast<std::size_t>(key) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }

  void place(std::uint64_t key, std::uint32_t value) {
    auto i = home(key);
    while (slots_[i].key != 0 && slots_[i].key != key)
      i = next(i);
    if (slots_[i].key == 0)
      ++size_;
    slots_[i] = slot{key, value};
  }

  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    size_ = 0;
    for (const auto& s : old)
      if (s.key != 0)
        place(s.key, s.value);
  }

  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

} // namespace gpumem::core::detail
