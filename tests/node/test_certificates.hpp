#pragma once
// Certificates for tests of mutual TLS, made with the openssl command in a directory of
// their own.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gpumem/messages/tls.hpp"

namespace gpumem::test {

namespace fs = std::filesystem;

/// Two CAs made with the openssl command: `ca` signs the node's and a client's
/// certificate, `other` a stranger's.
class test_certificates {
public:
  test_certificates()
    : dir_(fs::temp_directory_path() / ("gpumem_tls_" + std::to_string(getpid()))) {
    fs::create_directories(dir_);
    ca("ca");
    ca("other");
    signed_by("node", "ca");
    signed_by("client", "ca");
    signed_by("stranger", "other");
  }
  ~test_certificates() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  messages::tls_files files(const std::string& who, const std::string& trusted = "ca") const {
    return {path(who + ".pem"), path(who + ".key"), path(trusted + ".pem")};
  }

private:
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void run(const std::string& command) const {
    INFO(command);
    REQUIRE(std::system((command + " > /dev/null 2>&1").c_str()) == 0);
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
