#pragma once
// Writing a known pattern into device memory and checksumming it back: how the day
// proves that bytes survive a sleep and wake, or an offload, at the same address.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "gpumem/cuda/device_backend.hpp"
#include "gpumem/messages/all.hpp"

namespace gpumem::tool::demo {

/// A region filled with the pattern of `seed`; `sum` is the checksum written.
struct weight_tensor {
  messages::region_handle handle;
  std::uint64_t seed = 0;
  std::uint64_t sum = 0;
};

/// Device memory as host bytes: on the host backend the address is the pointer;
/// elsewhere through a pinned staging buffer and the backend's copies.
class weight_io {
public:
  weight_io(cuda::device_backend& backend, std::size_t largest);
  bool direct() const { return host_; }
  bool usable() const { return host_ || !staging_.empty(); }

  /// Fills the region with the tensor's pattern; its checksum, or nullopt.
  std::optional<std::uint64_t> fill(const weight_tensor& t);

  /// The checksum of what the region holds now, or nullopt.
  std::optional<std::uint64_t> read(const weight_tensor& t);

private:
  cuda::device_backend& backend_;
  bool host_ = false;
  cuda::pinned_buffer staging_;
};

} // namespace gpumem::tool::demo
