#include "reply.hpp"

namespace gpumem::control {

using messages::gpumem_errc;

reply json_reply(const nlohmann::json& body, http::status status) {
  reply r;
  r.status = status;
  // Tags are the callers' strings: invalid UTF-8 is written as U+FFFD, not thrown.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

reply error_reply(http::status status, const std::string& code, const std::string& message) {
  return json_reply({{"error", code}, {"message", message}}, status);
}

http::status status_of(gpumem_errc code) {
  switch (code) {
    case gpumem_errc::tag_asleep:
    case gpumem_errc::transition_in_progress:
    case gpumem_errc::invalid_transition:
    case gpumem_errc::device_asleep:
      return http::status::conflict;
    case gpumem_errc::out_of_memory:
    case gpumem_errc::insufficient_memory:
      return http::status::insufficient_storage;
    case gpumem_errc::device_failure:
    case gpumem_errc::no_device_available:
    case gpumem_errc::timeout:
    case gpumem_errc::rolled_back:
    case gpumem_errc::node_unreachable:
      return http::status::service_unavailable;
    case gpumem_errc::zero_size:
    case gpumem_errc::too_large:
    case gpumem_errc::invalid_alignment:
    case gpumem_errc::unknown_strategy:
    case gpumem_errc::invalid_tag:
    case gpumem_errc::unknown_region:
    case gpumem_errc::double_free:
    case gpumem_errc::invalid_config:
    case gpumem_errc::unknown_device:
      return http::status::bad_request;
  }
  return http::status::service_unavailable;
}

reply failure_reply(const client::failure& f) {
  return error_reply(status_of(f.code), messages::to_string(f.code), f.message);
}

} // namespace gpumem::control
