#include "whole_file.hpp"

#include <filesystem>
#include <fstream>
#include <system_error>

namespace gpumem::tool {

bool write_whole_file(const std::string& path, const std::string& text) {
  auto partial = path + ".partial";
  bool written = false;
  {
    std::ofstream out(partial, std::ios::binary);
    out << text;
    written = static_cast<bool>(out.flush());
  }
  std::error_code ec;
  if (written)
    std::filesystem::rename(partial, path, ec);
  if (!written || ec) {
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    return false;
  }
  return true;
}

} // namespace gpumem::tool
