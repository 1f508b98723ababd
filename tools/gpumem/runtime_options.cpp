#include "runtime_options.hpp"

#include <stdexcept>

#include "gpumem/messages/register.hpp"

namespace gpumem::tool {

std::optional<actors::runtime_config> read_runtime_config(actors::gpumem_config& cfg,
                                                          const std::vector<std::string>& args) {
  messages::register_protocol(cfg);
  auto parsed = cfg.parse_command_line(args);
  if (!parsed)
    throw std::invalid_argument(parsed.error().message);
  if (*parsed == actors::gpumem_config::parse_outcome::exit)
    return std::nullopt;
  auto config = cfg.to_runtime_config();
  if (!config)
    throw std::invalid_argument(config.error().message);
  return std::move(config).value();
}

} // namespace gpumem::tool
