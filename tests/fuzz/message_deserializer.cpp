// Fuzzes CAF's binary deserialization of every protocol value type (and the
// std::vector<T> register_protocol() registers with each): what a remote peer may send.
// The first input byte picks the type, the rest are its bytes. Property: a value that
// deserializes serializes to bytes that deserialize, consuming all of them, to a value
// that serializes to the same bytes (compared as bytes, so NaN doubles count as equal);
// bytes that do not deserialize get an error and no crash.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>

#include "property.hpp"
#include "protocol_types.hpp"

using gpumem::fuzz::require;

namespace {

template <class T>
std::vector<char> serialize(T& value) {
  std::vector<char> bytes;
  caf::binary_serializer sink{nullptr, bytes};
  auto err = sink(value);
  require(!err, "a decoded value serializes", caf::to_string(err));
  return bytes;
}

template <class T>
void round_trip(const char* bytes, std::size_t size) {
  T first;
  caf::binary_deserializer source{nullptr, bytes, size};
  if (source(first))
    return;  // refused: an error value, nothing thrown, nothing read out of bounds
  auto written = serialize(first);
  T second;
  caf::binary_deserializer again{nullptr, written};
  auto err = again(second);
  require(!err, "a serialized value deserializes", caf::to_string(err));
  require(again.remaining() == 0, "deserializing reads exactly what serializing wrote");
  require(serialize(second) == written, "the value read back is the same value",
          caf::deep_to_string(first) + "\n" + caf::deep_to_string(second));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const auto* bytes = reinterpret_cast<const char*>(data) + 1;
  gpumem::fuzz::protocol_types::visit(data[0] % gpumem::fuzz::protocol_types::selectors,
                                      [&]<class T>() { round_trip<T>(bytes, size - 1); });
  return 0;
}
