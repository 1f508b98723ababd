#pragma once
// The backend every benchmark runs against, chosen by main() from --backend.

#include "gpumem/cuda/device_backend.hpp"

/// The device the benchmarks use.
inline constexpr int bench_device = 0;

/// Valid from the start of main() until the benchmarks have run.
gpumem::cuda::device_backend& bench_backend();
