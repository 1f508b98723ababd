#include "snapshot_html.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "gpumem/control/map_page.hpp"
#include "gpumem/core/snapshot.hpp"
#include "whole_file.hpp"

namespace gpumem::tool {

namespace {

constexpr int failed_exit = 1;

} // namespace

int run_snapshot_html(const std::vector<std::string>& files, const std::string& out) {
  std::vector<control::map_snapshot> snapshots;
  std::string title = "gpumem memory map:";
  for (const auto& file : files) {
    std::error_code ec;
    std::ifstream in(file, std::ios::binary);
    if (std::filesystem::is_directory(file, ec) || !in) {
      std::fprintf(stderr, "gpumem snapshot: cannot read '%s'\n", file.c_str());
      return failed_exit;
    }
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) {
      std::fprintf(stderr, "gpumem snapshot: cannot read '%s'\n", file.c_str());
      return failed_exit;
    }
    // The documented reader checks every field; the page gets its canonical form.
    auto snapshot = core::memory_snapshot::from_json(text);
    if (!snapshot) {
      std::fprintf(stderr, "gpumem snapshot: '%s' is not a gpumem snapshot (docs/snapshot.md): %s\n",
                   file.c_str(), snapshot.error().to_string().c_str());
      return failed_exit;
    }
    snapshots.push_back({"device " + std::to_string(snapshot->device) + " (" + file + ")",
                         snapshot->to_json(-1)});
    title += " " + file;
  }
  auto page = control::map_page(snapshots, title);
  if (out == "-") {
    std::fwrite(page.data(), 1, page.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : failed_exit;
  }
  if (!write_whole_file(out, page)) {
    std::fprintf(stderr, "gpumem snapshot: cannot write '%s'\n", out.c_str());
    return failed_exit;
  }
  std::fprintf(stderr, "gpumem snapshot: wrote the memory map of %zu snapshot(s) to %s\n",
               snapshots.size(), out.c_str());
  return 0;
}

} // namespace gpumem::tool
