#pragma once
// `gpumem node` as a child process on a free loopback port (ctest names the executable
// in GPUMEM_TOOL), for tests that kill, stop or flood it: support/node_processes.hpp
// under Catch2, whose failures it reports.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "support/node_processes.hpp"

namespace gpumem::test {

inline std::string gpumem_tool() {
  const char* tool = std::getenv("GPUMEM_TOOL");
  if (tool == nullptr)
    FAIL("GPUMEM_TOOL names no gpumem executable (ctest sets it)");
  return tool;
}

/// One `gpumem node` (node_process_child); a failure to start fails the test.
class node_child : public node_process_child {
public:
  explicit node_child(std::vector<std::string> extra = {}) try
    : node_process_child(gpumem_tool(), std::move(extra)) {
  } catch (const std::exception& e) {
    FAIL(e.what());
  }
  void signal(int sig) const { REQUIRE(node_process_child::signal(sig)); }
};

/// The certificates of support/node_processes.hpp; a failure to make them fails the test.
class test_certificates : public certificate_set {
public:
  test_certificates() try : certificate_set() {
  } catch (const std::exception& e) {
    FAIL(e.what());
  }
};

} // namespace gpumem::test
