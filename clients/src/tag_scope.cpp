#include "gpumem/client/tag_scope.hpp"

#include <vector>

namespace gpumem::client {

namespace {

std::vector<std::string>& scopes() {
  thread_local std::vector<std::string> stack;
  return stack;
}

} // namespace

const std::string& current_tag() {
  static const std::string fallback{default_tag};
  const auto& stack = scopes();
  return stack.empty() ? fallback : stack.back();
}

void push_tag(std::string tag) {
  scopes().push_back(std::move(tag));
}

bool pop_tag() {
  auto& stack = scopes();
  if (stack.empty())
    return false;
  stack.pop_back();
  return true;
}

std::size_t tag_depth() {
  return scopes().size();
}

} // namespace gpumem::client
