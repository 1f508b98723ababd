#include "weight_io.hpp"

#include <cstring>

namespace gpumem::tool::demo {

namespace {

std::uint64_t checksum(const std::byte* data, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  const auto* words = reinterpret_cast<const std::uint64_t*>(data);
  for (std::size_t i = 0; i < size / sizeof(std::uint64_t); ++i) {
    hash ^= words[i];
    hash *= 0x100000001b3ull;
  }
  for (std::size_t i = size / sizeof(std::uint64_t) * sizeof(std::uint64_t); i < size; ++i) {
    hash ^= static_cast<std::uint64_t>(data[i]);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

void fill_pattern(std::byte* data, std::size_t size, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  std::size_t words = size / sizeof(std::uint64_t);
  auto* w = reinterpret_cast<std::uint64_t*>(data);
  for (std::size_t i = 0; i < words; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
  for (std::size_t i = words * sizeof(std::uint64_t); i < size; ++i)
    data[i] = static_cast<std::byte>(i);
}

} // namespace

weight_io::weight_io(cuda::device_backend& backend, std::size_t largest) : backend_(backend) {
  host_ = backend.name() == "host";
  if (!host_) {
    auto pinned = backend.allocate_pinned(largest);
    if (pinned)
      staging_ = std::move(pinned).value();
  }
}

std::optional<std::uint64_t> weight_io::fill(const weight_tensor& t) {
  auto size = static_cast<std::size_t>(t.handle.requested);
  if (host_) {
    auto* p = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(t.handle.address));
    fill_pattern(p, size, t.seed);
    return checksum(p, size);
  }
  fill_pattern(staging_.data(), size, t.seed);
  auto sum = checksum(staging_.data(), size);
  auto copy = backend_.copy_to_device_async(t.handle.device, t.handle.address, staging_.data(), size);
  if (!copy || !(*copy)->wait())
    return std::nullopt;
  return sum;
}

std::optional<std::uint64_t> weight_io::read(const weight_tensor& t) {
  auto size = static_cast<std::size_t>(t.handle.requested);
  if (host_)
    return checksum(reinterpret_cast<const std::byte*>(static_cast<std::uintptr_t>(t.handle.address)),
                    size);
  std::memset(staging_.data(), 0, size);
  auto copy = backend_.copy_to_host_async(t.handle.device, staging_.data(), t.handle.address, size);
  if (!copy || !(*copy)->wait())
    return std::nullopt;
  return checksum(staging_.data(), size);
}

} // namespace gpumem::tool::demo
