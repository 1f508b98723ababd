#pragma once
// The one parser of byte sizes, for the config file and every command line.

#include <cstddef>
#include <string_view>

namespace gpumem {

/// Parses a byte size: a non-negative integer with an optional binary suffix:
/// "4096", "512K", "256M", "1G", "2T" (also "KiB", "MiB", "GiB", "TiB", "B", any
/// case of the letter). Returns false if `text` is none of these or overflows.
bool parse_byte_size(std::string_view text, std::size_t& bytes) noexcept;

} // namespace gpumem
