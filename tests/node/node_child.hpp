#pragma once
// `gpumem node` as a child process on a free loopback port (ctest names the executable
// in GPUMEM_TOOL), for tests that kill, stop or flood it.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/wait.hpp"

extern char** environ;

namespace gpumem::test {

namespace fs = std::filesystem;

/// One `gpumem node` (on a free loopback port unless `extra` names another; with
/// "--cluster" in `extra`, its cluster on another); killed (SIGKILL) at the end if
/// still there.
class node_child {
public:
  explicit node_child(std::vector<std::string> extra = {}) {
    const char* tool = std::getenv("GPUMEM_TOOL");
    if (tool == nullptr)
      FAIL("GPUMEM_TOOL names no gpumem executable (ctest sets it)");
    dir_ = fs::temp_directory_path() / ("gpumem_node_" + std::to_string(getpid()) + "_"
                                        + std::to_string(counter_++));
    fs::create_directories(dir_);
    const auto port_file = (dir_ / "port").string();
    const auto log = (dir_ / "log").string();
    std::vector<std::string> args{tool, "node", "--port-file", port_file,
                                  "--gpumem.host.devices=1", "--gpumem.host.capacity=128M",
                                  "--gpumem.request-timeout-ms=2000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto given = [&](const char* prefix) {
      return std::any_of(extra.begin(), extra.end(),
                         [&](const std::string& a) { return a.starts_with(prefix); });
    };
    if (!given("--gpumem.node.listen="))
      args.push_back("--gpumem.node.listen=127.0.0.1:0");
    const bool cluster = given("--cluster");
    const auto cluster_port_file = (dir_ / "cluster_port").string();
    if (cluster) {
      args.insert(args.end(), {"--cluster-port-file", cluster_port_file});
      if (!given("--gpumem.cluster.listen="))
        args.push_back("--gpumem.cluster.listen=127.0.0.1:0");
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    int spawned = posix_spawn(&pid_, tool, &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    REQUIRE(spawned == 0);
    // A port file appears whole: written elsewhere, then renamed (write_whole_file).
    const auto& last = cluster ? cluster_port_file : port_file;
    auto up = test::poll_until([&] { return fs::exists(last) || exited(); });
    INFO("node log: " << read(log));
    REQUIRE(up.done);
    REQUIRE_FALSE(exited());
    port_ = static_cast<std::uint16_t>(std::stoul(read(port_file)));
    if (cluster)
      cluster_port_ = static_cast<std::uint16_t>(std::stoul(read(cluster_port_file)));
  }
  ~node_child() {
    if (pid_ > 0 && !exited()) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::uint16_t port() const { return port_; }
  /// Its cluster's port (with --cluster).
  std::uint16_t cluster_port() const { return cluster_port_; }
  void signal(int sig) const { REQUIRE(::kill(pid_, sig) == 0); }
  /// True once the process has ended (reaped here).
  bool exited() {
    if (status_ >= 0)
      return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_)
      status_ = status;
    return status_ >= 0;
  }
  int status() const { return status_; }

private:
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  int status_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t cluster_port_ = 0;
};

} // namespace gpumem::test
