#pragma once
// `gpumem ctl`: the control plane of a running `gpumem serve` (or any host serving it)
// from the command line. Prints the answer's JSON on stdout; a sleep or wake also
// shows a progress line while it runs and a summary when it is done, on stderr; `map`
// writes the memory map page to --out instead (replaced whole, and only once the
// server answered it).
// Exit codes: 0 done; 1 the server refused or failed (its error code, message and
// HTTP status on stderr), or --out cannot be written; 2 bad usage; 3 no answer
// (cannot connect, timed out, not the answer asked for).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gpumem::tool {

struct ctl_options {
  std::string url;      // http://host:port
  std::string command;  // status, stats, snapshot, map, sleep, wake, trim, defragment
  int level = 1;
  std::vector<std::string> tags;
  std::int64_t device = -1;  // -1: every device (map, trim, defragment); snapshot needs one
  std::string out;           // map: the file to write (- for stdout)
  std::chrono::seconds timeout{600};
};

int run_ctl(const ctl_options& options);

} // namespace gpumem::tool
