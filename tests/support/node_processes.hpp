#pragma once
// `gpumem node` as a child process, and certificates for mutual TLS, for the tests and
// the cluster benchmark alike. Neither knows Catch2: a failure throws
// std::runtime_error saying why (the tests' wrappers turn it into a FAIL).

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gpumem/messages/tls.hpp"

extern char** environ;

namespace gpumem::test {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// One `gpumem node` of `tool` on a free loopback port (unless `extra` names another;
/// with "--cluster" in `extra`, its cluster on another), its output in a log of its
/// own; killed (SIGKILL) at the end if still there. Waits up to a minute for it to
/// listen.
class node_process_child {
public:
  node_process_child(const std::string& tool, std::vector<std::string> extra) {
    dir_ = fs::temp_directory_path()
           / ("gpumem_node_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    const auto port_file = (dir_ / "port").string();
    const auto cluster_port_file = (dir_ / "cluster_port").string();
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
    if (cluster) {
      args.insert(args.end(), {"--cluster-port-file", cluster_port_file});
      if (!given("--gpumem.cluster.listen="))
        args.push_back("--gpumem.cluster.listen=127.0.0.1:0");
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const auto log = log_path();
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    const int spawned = posix_spawn(&pid_, tool.c_str(), &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (spawned != 0)
      throw std::runtime_error("cannot start " + tool);
    // A port file appears whole: written elsewhere, then renamed (write_whole_file).
    const fs::path last = cluster ? cluster_port_file : port_file;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    while (!fs::exists(last)) {
      if (exited() || std::chrono::steady_clock::now() > until)
        throw std::runtime_error("gpumem node did not listen; its log: " + read_file(log));
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    port_ = static_cast<std::uint16_t>(std::stoul(read_file(port_file)));
    if (cluster)
      cluster_port_ = static_cast<std::uint16_t>(std::stoul(read_file(cluster_port_file)));
  }
  node_process_child(const node_process_child&) = delete;
  node_process_child& operator=(const node_process_child&) = delete;
  ~node_process_child() {
    kill();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::uint16_t port() const { return port_; }
  /// Its cluster's port (with --cluster).
  std::uint16_t cluster_port() const { return cluster_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  /// False where the process is gone.
  bool signal(int sig) const { return ::kill(pid_, sig) == 0; }
  /// Ends it with SIGKILL and reaps it (no-op once it has ended).
  void kill() {
    if (pid_ > 0 && !exited()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (waitpid(pid_, &status, 0) == pid_)
        status_ = status;
    }
  }
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
  fs::path log_path() const { return dir_ / "log"; }

private:
  static inline int counter_ = 0;
  fs::path dir_;
  pid_t pid_ = -1;
  int status_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t cluster_port_ = 0;
};

/// Two CAs made with the openssl command: `ca` signs the node's and a client's
/// certificate, `other` a stranger's; removed at the end.
class certificate_set {
public:
  certificate_set()
    : dir_(fs::temp_directory_path() / ("gpumem_tls_" + std::to_string(getpid()))) {
    fs::create_directories(dir_);
    ca("ca");
    ca("other");
    signed_by("node", "ca");
    signed_by("client", "ca");
    signed_by("stranger", "other");
  }
  certificate_set(const certificate_set&) = delete;
  certificate_set& operator=(const certificate_set&) = delete;
  ~certificate_set() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  /// Who's certificate and key, trusting the CA `trusted`.
  messages::tls_files files(const std::string& who, const std::string& trusted = "ca") const {
    return {path(who + ".pem"), path(who + ".key"), path(trusted + ".pem")};
  }

private:
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void run(const std::string& command) const {
    if (std::system((command + " > /dev/null 2>&1").c_str()) != 0)
      throw std::runtime_error("failed: " + command);
  }
  void ca(const std::string& name) const {
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout "
        + path(name + ".key") + " -out " + path(name + ".pem"));
  }
  void signed_by(const std::string& name, const std::string& ca) const {
    run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout "
        + path(name + ".key") + " -out " + path(name + ".csr"));
    run("openssl x509 -req -days 2 -in " + path(name + ".csr") + " -CA " + path(ca + ".pem")
        + " -CAkey " + path(ca + ".key") + " -CAcreateserial -out " + path(name + ".pem"));
  }
  fs::path dir_;
};

} // namespace gpumem::test
