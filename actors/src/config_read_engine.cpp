// [gpumem.engine]: every engine setting, checked against the granularity of each
// backend it may run on, and the allocation strategies.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "config_reader.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::actors::detail {

void read_engine_section(const reader& in, runtime_config& config) {
  const runtime_config defaults;
  const auto& host = config.host;
  std::size_t granularity = 2 * MiB;  // CUDA's minimum
  std::string granularity_name = "CUDA's minimum granularity";
  if (config.backend != backend_kind::cuda && host.granularity > granularity) {
    granularity = host.granularity;
    granularity_name = "the granularity (gpumem.host.granularity)";
  } else if (config.backend == backend_kind::host) {
    granularity_name = "the granularity (gpumem.host.granularity)";
  }
  auto granularity_text = granularity_name + " " + format_bytes(granularity);
  auto& engine = config.engine;
  const auto& de = defaults.engine;
  engine.arena_size = in.size("gpumem.engine.arena-size", de.arena_size);
  engine.small_chunk = in.size("gpumem.engine.small-chunk", de.small_chunk);
  engine.large_chunk = in.size("gpumem.engine.large-chunk", de.large_chunk);
  engine.small_segment = in.size("gpumem.engine.small-segment", de.small_segment);
  engine.small_threshold = in.size("gpumem.engine.small-threshold", de.small_threshold);
  engine.default_alignment = in.size("gpumem.engine.default-alignment", de.default_alignment);
  engine.cache_limit = in.size("gpumem.engine.cache-limit", de.cache_limit);
  engine.wake_margin = in.size("gpumem.engine.wake-margin", de.wake_margin);
  engine.copy_piece = in.size("gpumem.engine.copy-piece", de.copy_piece);
  engine.copies_in_flight =
    static_cast<int>(in.integer("gpumem.engine.copies-in-flight", de.copies_in_flight));
  engine.packed_tags = in.text_list("gpumem.engine.packed-tags", de.packed_tags);

  if (engine.small_chunk == 0 || engine.small_chunk % granularity != 0)
    in.fail("gpumem.engine.small-chunk", "expected a non-zero multiple of " + granularity_text
                                            + ", got " + format_bytes(engine.small_chunk));
  if (engine.large_chunk < engine.small_chunk || engine.large_chunk % engine.small_chunk != 0)
    in.fail("gpumem.engine.large-chunk",
            "expected a multiple of gpumem.engine.small-chunk " + format_bytes(engine.small_chunk)
              + ", got " + format_bytes(engine.large_chunk));
  if (engine.small_segment < engine.small_chunk || engine.small_segment % engine.small_chunk != 0)
    in.fail("gpumem.engine.small-segment",
            "expected a multiple of gpumem.engine.small-chunk " + format_bytes(engine.small_chunk)
              + ", got " + format_bytes(engine.small_segment));
  if (engine.small_threshold == 0 || engine.small_threshold > engine.small_segment)
    in.fail("gpumem.engine.small-threshold",
            "expected a size from 1 byte to gpumem.engine.small-segment "
              + format_bytes(engine.small_segment) + ", got " + format_bytes(engine.small_threshold));
  if (!power_of_two(engine.default_alignment) || engine.default_alignment < 256
      || engine.default_alignment > granularity)
    in.fail("gpumem.engine.default-alignment",
            "expected a power of two from 256 to " + granularity_text + ", got "
              + std::to_string(engine.default_alignment));
  if (engine.arena_size != 0
      && (engine.arena_size % granularity != 0 || engine.arena_size < engine.small_segment))
    in.fail("gpumem.engine.arena-size",
            "expected 0 or a multiple of " + granularity_text
              + " holding at least one small segment, got " + format_bytes(engine.arena_size));
  if (engine.copy_piece == 0)
    in.fail("gpumem.engine.copy-piece", "expected a non-zero byte size, got 0");
  for (const auto& tag : engine.packed_tags)
    if (tag.empty())
      in.fail("gpumem.engine.packed-tags", "expected non-empty tag names, got an empty one");

  config.default_strategy = choose(in, "gpumem.engine.default-strategy",
                                   in.text("gpumem.engine.default-strategy", "pooled"),
                                   std::array{std::pair{"pooled", core::strategy::pooled},
                                              std::pair{"first_fit", core::strategy::first_fit},
                                              std::pair{"dedicated", core::strategy::dedicated}});
  auto entries = in.entry_list("gpumem.engine.tag-strategies");
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& entry = entries[i];
    auto bad = [&](const std::string& why) {
      in.fail("gpumem.engine.tag-strategies",
              "entry " + std::to_string(i + 1) + " \"" + entry + "\": " + why
                + "; expected \"tag=strategy\" with strategy pooled, first_fit or dedicated");
    };
    auto eq = entry.find('=');
    if (eq == std::string::npos)
      bad("no '='");
    auto tag = trim(std::string_view(entry).substr(0, eq));
    auto name = trim(std::string_view(entry).substr(eq + 1));
    if (tag.empty())
      bad("empty tag name");
    auto how = core::parse_strategy(name);
    if (!how)
      bad("unknown strategy \"" + name + "\"");
    if (!config.tag_strategies.emplace(tag, *how).second)
      bad("tag \"" + tag + "\" is given a strategy twice");
  }

  // The engine's own check, as a net under the ones above.
  cuda::device_properties props;
  props.total_memory = host.capacities.front();
  props.vmm_supported = true;
  props.granularity_minimum = granularity;
  props.granularity_recommended = granularity;
  if (auto checked = config.engine_config_for(0).validate(props); !checked)
    in.fail("gpumem.engine", checked.error().message());
}

} // namespace gpumem::actors::detail
