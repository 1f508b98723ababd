#include "gpumem/messages/tls.hpp"

#include <fstream>

#include <caf/io/middleman.hpp>

#ifdef GPUMEM_WITH_TLS
#include <caf/openssl/manager.hpp>
#endif

namespace gpumem::messages {

bool tls_available() noexcept {
#ifdef GPUMEM_WITH_TLS
  return true;
#else
  return false;
#endif
}

std::string validate(const tls_files& files) {
  const std::pair<const char*, const std::string*> named[] = {
    {"certificate", &files.certificate}, {"key", &files.key}, {"ca-file", &files.ca_file}};
  for (const auto& [what, path] : named) {
    if (path->empty())
      return std::string{"TLS needs a certificate, its key and a CA file: "} + what
             + " is missing";
    if (!std::ifstream{*path})
      return std::string{"TLS "} + what + ": cannot read " + *path;
  }
  return {};
}

std::string use_tls(caf::actor_system_config& cfg, const tls_files& files) {
  if (auto why = validate(files); !why.empty())
    return why;
#ifdef GPUMEM_WITH_TLS
  cfg.openssl_certificate = files.certificate;
  cfg.openssl_key = files.key;
  cfg.openssl_cafile = files.ca_file;
  cfg.load<caf::openssl::manager>();
  return {};
#else
  (void)cfg;
  return "this build has no TLS: CAF's openssl module (libcaf_openssl) was not found";
#endif
}

caf::io::middleman_actor network_manager(caf::actor_system& sys) {
#ifdef GPUMEM_WITH_TLS
  if (sys.has_openssl_manager())
    return sys.openssl_manager().actor_handle();
#endif
  return sys.middleman().actor_handle();
}

} // namespace gpumem::messages
