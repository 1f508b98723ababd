#include "gpumem/client/result.hpp"

#include <caf/sec.hpp>

namespace gpumem::client {

std::string failure::to_string() const {
  std::string text = messages::to_string(code);
  if (!message.empty())
    text += ": " + message;
  return text;
}

failure to_failure(const caf::error& e) {
  if (auto code = messages::gpumem_code(e))
    return {*code, messages::error_message(e)};
  if (e == caf::sec::request_timeout)
    return {messages::gpumem_errc::timeout, "no answer from the runtime before the deadline"};
  return {messages::gpumem_errc::device_failure,
          "the runtime could not be asked: " + caf::to_string(e)};
}

} // namespace gpumem::client
