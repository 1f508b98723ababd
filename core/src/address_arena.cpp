#include "address_arena.hpp"

namespace gpumem::core::detail {

address_arena::address_arena(cuda::device_ptr base, std::size_t size) : base_(base), size_(size) {
  insert_free(base, size);
}

std::optional<cuda::device_ptr> address_arena::allocate(std::size_t size) {
  auto fit = by_size_.lower_bound({size, 0});
  if (fit == by_size_.end())
    return std::nullopt;
  auto [free_size, address] = *fit;
  erase_free(by_address_.find(address));
  if (free_size > size)
    insert_free(address + size, free_size - size);
  return address;
}

bool address_arena::extend(cuda::device_ptr address, std::size_t size) {
  auto it = by_address_.find(address);
  if (it == by_address_.end() || it->second < size)
    return false;
  auto rest = it->second - size;
  erase_free(it);
  if (rest > 0)
    insert_free(address + size, rest);
  return true;
}

void address_arena::release(cuda::device_ptr address, std::size_t size) {
  // Merge with the free neighbours on either side.
  auto next = by_address_.lower_bound(address);
  if (next != by_address_.end() && next->first == address + size) {
    size += next->second;
    erase_free(next);
  }
  auto prev = by_address_.lower_bound(address);
  if (prev != by_address_.begin()) {
    --prev;
    if (prev->first + prev->second == address) {
      address = prev->first;
      size += prev->second;
      erase_free(prev);
    }
  }
  insert_free(address, size);
}

void address_arena::insert_free(cuda::device_ptr address, std::size_t size) {
  by_address_.emplace(address, size);
  by_size_.emplace(size, address);
  free_bytes_ += size;
}

void address_arena::erase_free(std::map<cuda::device_ptr, std::size_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_bytes_ -= it->second;
  by_address_.erase(it);
}

} // namespace gpumem::core::detail
