// Fuzzes memory_snapshot::from_json (docs/snapshot.md), which reads snapshots that
// other processes and tools wrote. Property: a document it accepts writes back with
// to_json to a document it accepts again, as the same snapshot; one it refuses gets
// invalid_config with a message that says so.

#include <cstddef>
#include <cstdint>
#include <string>

#include "gpumem/core/snapshot.hpp"
#include "property.hpp"

using gpumem::core::engine_errc;
using gpumem::core::memory_snapshot;
using gpumem::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto first = memory_snapshot::from_json(text);
  if (!first) {
    require(first.error().code() == engine_errc::invalid_config, "a refusal is invalid_config",
            first.error().to_string());
    require(gpumem::fuzz::starts_with(first.error().message(), "snapshot JSON: ")
              && first.error().message().size() > 15,
            "a refusal says what is wrong", first.error().message());
    return 0;
  }
  // Compared as documents: to_json writes every field the snapshot holds.
  const std::string written = first->to_json(-1);
  auto second = memory_snapshot::from_json(written);
  require(second.ok(), "what from_json accepted, written back, is accepted again",
          second ? std::string() : second.error().message() + "\n" + written);
  require(second->to_json(-1) == written, "the snapshot read back is the same snapshot",
          written + "\n" + second->to_json(-1));
  return 0;
}
