#pragma once
// An index from 64-bit keys to the slots of a table that stores the keys itself (the
// region table). With 100k regions live the region table's two indexes are what an
// allocate and a free miss the cache on most, so an entry is 8 bytes, the key's
// 32-bit hash and the slot, and the table confirms a key from the slot, which its
// caller reads anyway.
//
// Open addressing with Robin Hood linear probing: an entry never lies further from
// its home than the entry it displaced, so a lookup stops early and a deletion shifts
// back only displaced entries. That keeps runs harmless when the hash is the key
// itself, as it is for region ids: consecutive ids then land in consecutive entries,
// and filing a new region touches a cache line the previous one already loaded.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace gpumem::core::detail {

/// Keys that count up (region ids): their low bits, so neighbours stay neighbours.
struct sequential_key_hash {
  std::uint32_t operator()(std::uint64_t key) const { return static_cast<std::uint32_t>(key); }
};

/// Keys that share their low bits (addresses): Fibonacci hashing, whose top bits
/// depend on every bit of the key.
struct spread_key_hash {
  std::uint32_t operator()(std::uint64_t key) const {
    return static_cast<std::uint32_t>((key * 0x9e3779b97f4a7c15ull) >> 32);
  }
};

template <class Hash>
class slot_index {
public:
  slot_index() : entries_(16) {}

  /// The slot filed under `key` for which `holds(slot)` is true, or nothing.
  template <class Holds>
  std::optional<std::uint32_t> find(std::uint64_t key, Holds&& holds) const {
    auto h = Hash{}(key);
    auto i = home(h);
    for (std::size_t distance = 0;; ++distance, i = next(i)) {
      const auto& e = entries_[i];
      if (e.slot == empty || displacement(i) < distance)
        return std::nullopt;  // a run holds its keys closer to home than this
      if (e.hash == h && holds(e.slot))
        return e.slot;
    }
  }

  /// Starts loading the entry a find, insert or erase of `key` looks at first, so
  /// that its cache miss overlaps other work.
  void prefetch(std::uint64_t key) const { __builtin_prefetch(&entries_[home(Hash{}(key))]); }

  /// Files `slot` under `key` (the caller files each slot once).
  void insert(std::uint64_t key, std::uint32_t slot) {
    if ((size_ + 1) * 2 > entries_.size())
      grow();
    place({Hash{}(key), slot});
    ++size_;
  }

  /// Takes `slot`, filed under `key`, out of the index.
  void erase(std::uint64_t key, std::uint32_t slot) {
    auto i = home(Hash{}(key));
    while (entries_[i].slot != slot) {
      if (entries_[i].slot == empty)
        return;
      i = next(i);
    }
    // Shift the displaced entries after it one step closer to home.
    for (auto j = next(i); entries_[j].slot != empty && displacement(j) > 0; j = next(j)) {
      entries_[i] = entries_[j];
      i = j;
    }
    entries_[i] = entry{};
    --size_;
  }

  std::size_t size() const noexcept { return size_; }

private:
  static constexpr std::uint32_t empty = 0xffffffffu;

  struct entry {
    std::uint32_t hash = 0;
    std::uint32_t slot = empty;
  };

  std::size_t home(std::uint32_t h) const { return h & mask_; }
  std::size_t next(std::size_t i) const { return (i + 1) & mask_; }
  std::size_t displacement(std::size_t i) const { return (i - home(entries_[i].hash)) & mask_; }

  void place(entry e) {
    auto i = home(e.hash);
    for (std::size_t distance = 0;; ++distance, i = next(i)) {
      if (entries_[i].slot == empty) {
        entries_[i] = e;
        return;
      }
      // Robin Hood: the entry nearer its home gives way and moves on.
      if (auto theirs = displacement(i); theirs < distance) {
        std::swap(e, entries_[i]);
        distance = theirs;
      }
    }
  }

  void grow() {
    std::vector<entry> old(entries_.size() * 2);
    old.swap(entries_);
    mask_ = entries_.size() - 1;
    for (const auto& e : old)
      if (e.slot != empty)
        place(e);
  }

  std::vector<entry> entries_;
  std::size_t mask_ = 15;  // entries_.size() - 1; capacity stays within 32-bit hashes
  std::size_t size_ = 0;
};

} // namespace gpumem::core::detail
