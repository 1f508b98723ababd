#pragma once
// `gpumem snapshot --html OUT FILE...`: the memory map page (gpumem/control/map_page.hpp)
// of snapshot files (docs/snapshot.md), one section per file, written to OUT (- for
// stdout). Every file is read and checked before anything is written, and OUT is
// replaced whole or not at all: a bad file names itself and leaves OUT as it was.
// Exit codes: 0 written; 1 a file cannot be read or is not a snapshot, or OUT cannot
// be written.

#include <string>
#include <vector>

namespace gpumem::tool {

int run_snapshot_html(const std::vector<std::string>& files, const std::string& out);

} // namespace gpumem::tool
