#pragma once
// The C interface's process-wide state: the runtime it started (or the endpoint it
// was attached to), the blocking client over it, and the regions it handed out by
// address, so that free(ptr) knows the region, and an unknown pointer or a second
// free is refused before anything is asked of the runtime.

#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gpumem/client/blocking_client.hpp"

namespace gpumem::c_abi {

/// A runtime this library started, with its actor system (actors: hosted_runtime.cpp).
class hosted_runtime;
struct hosted_deleter {
  void operator()(hosted_runtime* runtime) const;  // stops it
};
using hosted_ptr = std::unique_ptr<hosted_runtime, hosted_deleter>;

struct state {
  /// Shared by calls, exclusive for start, attach and stop.
  std::shared_mutex lifecycle;
  hosted_ptr hosted;             // null when attached
  std::unique_ptr<client::blocking_client> client;    // null when stopped
  int devices = 0;

  std::mutex regions_mutex;
  std::unordered_map<std::uint64_t, messages::region_handle> live;  // by address
  std::unordered_set<std::uint64_t> freed;  // addresses freed and not handed out again
};

state& global();

/// Starts a runtime from command-line style arguments; the error's text on failure.
struct started {
  hosted_ptr runtime;
  client::endpoint endpoint;
  int devices = 0;
};
started start_hosted(const std::vector<std::string>& args, std::string& error);

} // namespace gpumem::c_abi
