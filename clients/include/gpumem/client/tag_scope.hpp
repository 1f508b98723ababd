#pragma once
// Tag scopes: the tag of allocations that name none, per thread, as vLLM's
// use_memory_pool(tag=...) does. Scopes nest; the innermost one applies. The stack
// is one per thread for the whole process, shared by every client and the C ABI.

#include <cstddef>
#include <string>
#include <utility>

namespace gpumem::client {

/// The tag allocations use where they name none: "default" where no scope is open.
inline constexpr const char* default_tag = "default";

/// The calling thread's innermost scope's tag, or default_tag.
const std::string& current_tag();

/// Opens a scope on the calling thread (push_tag) until pop_tag.
void push_tag(std::string tag);
/// Closes the innermost scope; false when none is open.
bool pop_tag();
/// How many scopes the calling thread has open.
std::size_t tag_depth();

/// RAII: push_tag on construction, pop_tag on destruction (same thread; not movable
/// across threads, hence not movable at all).
class tag_scope {
public:
  explicit tag_scope(std::string tag) { push_tag(std::move(tag)); }
  ~tag_scope() { pop_tag(); }
  tag_scope(const tag_scope&) = delete;
  tag_scope& operator=(const tag_scope&) = delete;
};

} // namespace gpumem::client
