#pragma once
// Memory taken straight from the backend, past the runtime: how the day plays an
// outside process that pushes a device into pressure, and a trainer that borrows
// the devices while the runtime sleeps.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gpumem/cuda/device_backend.hpp"

namespace gpumem::tool::demo {

/// The share of `device`'s memory in use, whoever uses it.
double used_fraction(cuda::device_backend& backend, int device);

/// Takes chunks on `device` straight from the backend until `target` of it is used;
/// the bytes taken.
std::uint64_t take_until(cuda::device_backend& backend, int device, double target,
                         std::size_t granularity, std::vector<cuda::chunk_handle>& taken);

/// Releases what take_until took; the number of chunks.
std::uint64_t give_back(cuda::device_backend& backend, std::vector<cuda::chunk_handle>& taken);

} // namespace gpumem::tool::demo
