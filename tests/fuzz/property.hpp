#pragma once
// What every fuzz target checks besides the sanitizers: a property of the decoder.
// A violation prints what was expected and traps, so libFuzzer keeps the input.

#include <cstdio>
#include <string>
#include <string_view>

namespace gpumem::fuzz {

inline void require(bool holds, std::string_view what, std::string_view detail = {}) {
  if (holds)
    return;
  std::fprintf(stderr, "property violated: %.*s\n", static_cast<int>(what.size()), what.data());
  if (!detail.empty())
    std::fprintf(stderr, "%.*s\n", static_cast<int>(detail.size()), detail.data());
  __builtin_trap();
}

inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

} // namespace gpumem::fuzz
