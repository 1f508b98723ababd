// parse_byte_size(): "4096", "512K", "256M", "1G", "2T" and their "KiB"/"B" forms.

#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string_view>
#include <system_error>

#include "gpumem/actors/byte_size.hpp"

namespace gpumem {

bool parse_byte_size(std::string_view text, std::size_t& bytes) noexcept {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data())
    return false;
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  while (!suffix.empty() && is_space(suffix.front()))
    suffix.remove_prefix(1);
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else {
    switch (std::toupper(static_cast<unsigned char>(suffix.front()))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return false;
    }
    auto rest = suffix.substr(1);
    if (!rest.empty() && rest != "iB" && rest != "B")
      return false;
  }
  if (shift > 0 && number > (std::numeric_limits<std::size_t>::max() >> shift))
    return false;
  bytes = static_cast<std::size_t>(number) << shift;
  return true;
}

} // namespace gpumem
