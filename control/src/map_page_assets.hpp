#pragma once
// The memory map page around its data: `head` (the document up to the opening of the
// data's <script type="application/json">) and `tail` (its end, and the script that
// draws the page from it).

namespace gpumem::control::map_assets {

extern const char* const head;
extern const char* const tail;

} // namespace gpumem::control::map_assets
