#pragma once
// The protocol over TLS (CAF's openssl module): each side presents a certificate that a
// CA the other side trusts has signed (mutual TLS), so a node serves only peers its CA
// vouches for. Loaded into a configuration before its actor system starts; a node then
// publishes, and a client connects, over it (gpumem/actors/node.hpp, connect_node).

#include <string>

#include <caf/actor_system.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/actor_system_config.hpp>

namespace gpumem::messages {

struct tls_files {
  std::string certificate;  // this side's certificate chain (PEM)
  std::string key;          // its private key (PEM, not encrypted)
  std::string ca_file;      // the CA certificate(s) that sign the peers' (PEM)

  bool empty() const { return certificate.empty() && key.empty() && ca_file.empty(); }
};

/// Whether this build speaks TLS: CAF's openssl module was found when it was built.
bool tls_available() noexcept;

/// Why `files` cannot be used, or "" when they can: all three are needed, and each
/// must be a readable file.
std::string validate(const tls_files& files);

/// Loads CAF's openssl module into `cfg` (which must load caf::io::middleman) with
/// these files; "" when done, else why not (validate(), or a build without TLS).
std::string use_tls(caf::actor_system_config& cfg, const tls_files& files);

/// The actor that listens and connects for `sys`: CAF's openssl manager where use_tls()
/// loaded it, else the middleman's own. Both take publish_atom and connect_atom, so the
/// choice of TLS is made here and nowhere else. `sys` must have loaded the middleman.
caf::io::middleman_actor network_manager(caf::actor_system& sys);

} // namespace gpumem::messages
