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

#include "gpumem/messages/tls.hpp"

namespace gpumem::tool {

/// gpumem ctl's exit codes besides 0.
inline constexpr int ctl_refused_exit = 1, ctl_usage_exit = 2, ctl_unreachable_exit = 3;

struct ctl_options {
  std::string url;      // http://host:port
  std::string command;  // status, stats, snapshot, map, sleep, wake, trim, defragment
  int level = 1;
  std::vector<std::string> tags;
  std::int64_t device = -1;  // -1: every device (map, trim, defragment); snapshot needs one
  std::string out;           // map: the file to write (- for stdout)
  std::chrono::seconds timeout{600};
  /// "host:port" of a gpumem node, or of a cluster: status, stats, sleep and wake go to
  /// it over CAF's network layer instead of --url (both empty: the HTTP control plane).
  std::string node;
  std::string cluster;
  std::vector<std::string> nodes;  // sleep, wake: only these nodes (default: all)
  messages::tls_files tls;         // --node, --cluster over mutual TLS: this side's files
};

int run_ctl(const ctl_options& options);
/// run_ctl for --node and --cluster (ctl_remote.cpp); the same exit codes.
int run_ctl_remote(const ctl_options& options);

} // namespace gpumem::tool
