#include "gpumem/client/result.hpp"

#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>

namespace gpumem::client {

std::string failure::to_string() const {
  std::string text = messages::to_string(code);
  if (!message.empty())
    text += ": " + message;
  return text;
}

failure to_failure(const caf::error& e, bool remote) {
  if (auto code = messages::gpumem_code(e))
    return {*code, messages::error_message(e)};
  if (e == caf::sec::request_timeout)
    return {messages::gpumem_errc::timeout, "no answer from the runtime before the deadline"};
  const bool gone = e == caf::sec::request_receiver_down
                    || e == caf::exit_reason::remote_link_unreachable;
  if (remote && gone)
    return {messages::gpumem_errc::node_unreachable,
            "the link to the node is lost: " + caf::to_string(e)};
  return {messages::gpumem_errc::device_failure,
          "the runtime could not be asked: " + caf::to_string(e)};
}

} // namespace gpumem::client
