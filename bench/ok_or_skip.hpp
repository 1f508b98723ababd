#pragma once
// Ending a benchmark on an error value, with the error as its reason.

#include <benchmark/benchmark.h>

/// True if `r` succeeded; otherwise skips the benchmark with its error.
template <class Result>
bool ok_or_skip(benchmark::State& state, const Result& r) {
  if (r.ok())
    return true;
  state.SkipWithError(r.error().to_string().c_str());
  return false;
}
