#pragma once
// A file the command-line tools write for others to read (a page, a report): replaced
// whole or not at all, so that a reader never sees half of it and a failed write
// leaves the old file as it was.

#include <string>

namespace gpumem::tool {

/// Writes `text` to a neighbour of `path` and renames it over `path`; false (and no
/// neighbour left behind) if either fails.
bool write_whole_file(const std::string& path, const std::string& text);

} // namespace gpumem::tool
