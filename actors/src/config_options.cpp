// gpumem's options: the table of every option, its lookups, and gpumem_config's
// constructor, which declares each option to CAF.

#include "config_options.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <caf/string_view.hpp>

#include "gpumem/actors/runtime_config.hpp"

namespace gpumem::actors {

namespace detail {

namespace {

constexpr std::array options{
  option_spec{"gpumem", "backend", value_kind::text, "\"auto\", \"host\" or \"cuda\"", "\"auto\"",
              "device layer: auto (CUDA if a VMM-capable GPU exists, else host), host, cuda"},
  option_spec{"gpumem", "while-asleep", value_kind::text, "\"queue\" or \"fail\"", "\"queue\"",
              "an allocation for a sleeping tag waits for its wake (queue) or fails (fail)"},
  option_spec{"gpumem", "request-timeout-ms", value_kind::integer,
              "a whole number of milliseconds from 1 to 3600000", "5000",
              "timeout of every request to a remote actor", 1, 3'600'000},
  option_spec{"gpumem", "log-level", value_kind::text,
              "one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", \"critical\", \"off\"",
              "\"info\"", "spdlog level"},

  option_spec{"gpumem.host", "devices", value_kind::integer, "an integer from 1 to 64", "2",
              "number of emulated devices (host backend)", 1, 64},
  option_spec{"gpumem.host", "capacity", value_kind::byte_size,
              "a byte size like \"1G\", \"512M\" or 1073741824", "\"1G\"",
              "memory of each emulated device"},
  option_spec{"gpumem.host", "capacities", value_kind::size_list,
              "a list of byte sizes like [\"1G\", \"512M\"], one per device", "[]",
              "per-device memory; replaces devices and capacity when non-empty"},
  option_spec{"gpumem.host", "granularity", value_kind::byte_size,
              "a power of two byte size of at least 2M", "\"2M\"",
              "allocation granularity of the emulated devices"},

  option_spec{"gpumem.engine", "arena-size", value_kind::byte_size,
              "0 or a byte size, a multiple of the granularity", "0",
              "virtual address space per engine; 0: twice the device's memory"},
  option_spec{"gpumem.engine", "small-chunk", value_kind::byte_size,
              "a byte size, a multiple of the granularity", "\"2M\"", "small physical chunk"},
  option_spec{"gpumem.engine", "large-chunk", value_kind::byte_size,
              "a byte size, a multiple of small-chunk", "\"32M\"", "large physical chunk"},
  option_spec{"gpumem.engine", "small-segment", value_kind::byte_size,
              "a byte size, a multiple of small-chunk", "\"2M\"",
              "segment shared by small requests"},
  option_spec{"gpumem.engine", "small-threshold", value_kind::byte_size,
              "a byte size from 1 to small-segment", "\"1M\"",
              "requests up to this size share small segments"},
  option_spec{"gpumem.engine", "default-alignment", value_kind::byte_size,
              "a power of two from 256 to the granularity", "256",
              "alignment of requests that ask for none"},
  option_spec{"gpumem.engine", "cache-limit", value_kind::byte_size, "a byte size", "\"256M\"",
              "wholly free segments kept mapped for reuse"},
  option_spec{"gpumem.engine", "wake-margin", value_kind::byte_size, "a byte size", "0",
              "device memory a wake leaves free beyond what it maps"},
  option_spec{"gpumem.engine", "copy-piece", value_kind::byte_size, "a non-zero byte size",
              "\"8M\"", "sleep and wake copy in pieces of this size"},
  option_spec{"gpumem.engine", "copies-in-flight", value_kind::integer,
              "an integer from 1 to 1024", "4", "sleep and wake copies in flight", 1, 1024},
  option_spec{"gpumem.engine", "packed-tags", value_kind::text_list,
              "a list of tag names like [\"weights\"]", "[\"weights\"]",
              "tags whose large allocations grow their newest segment in place"},
  option_spec{"gpumem.engine", "default-strategy", value_kind::text,
              "\"pooled\", \"first_fit\" or \"dedicated\"", "\"pooled\"",
              "allocation strategy of requests that ask for none"},
  option_spec{"gpumem.engine", "tag-strategies", value_kind::entry_list,
              "a list of \"tag=strategy\" entries like [\"kv_cache=dedicated\"] "
              "(command line: tag=strategy,tag=strategy)",
              "[]", "per-tag overrides of default-strategy"},

  option_spec{"gpumem.balancer", "routing", value_kind::text,
              "\"least-loaded\", \"round-robin\" or \"tag-affinity\"", "\"least-loaded\"",
              "how the balancer picks a device"},
  option_spec{"gpumem.balancer", "transition-timeout-ms", value_kind::integer,
              "a whole number of milliseconds from 1 to 86400000", "300000",
              "timeout of each device's sleep or wake in sleep_all / wake_all", 1, 86'400'000},
  option_spec{"gpumem.balancer", "refresh-interval-ms", value_kind::integer,
              "a whole number of milliseconds from 0 (never) to 3600000", "50",
              "how often the balancer asks every device for its free memory", 0, 3'600'000},

  option_spec{"gpumem.pressure", "period-ms", value_kind::integer,
              "a whole number of milliseconds from 1 to 3600000", "100",
              "how often the pressure monitor polls memory", 1, 3'600'000},
  option_spec{"gpumem.pressure", "warning", value_kind::fraction,
              "a fraction between 0 and 1 (exclusive), below critical", "0.80",
              "fraction of memory in use that raises a warning"},
  option_spec{"gpumem.pressure", "critical", value_kind::fraction,
              "a fraction above warning, at most 1", "0.92",
              "fraction of memory in use that is critical"},
  option_spec{"gpumem.pressure", "hysteresis", value_kind::fraction,
              "a fraction from 0 to below warning", "0.05",
              "a level is left only below its threshold minus this"},
  option_spec{"gpumem.pressure", "trim-at-warning", value_kind::boolean, "true or false", "true",
              "release cached segments at warning"},
  option_spec{"gpumem.pressure", "offload-at-critical", value_kind::boolean, "true or false",
              "true", "defragment, then offload offloadable tags at critical"},
  option_spec{"gpumem.pressure", "offloadable-tags", value_kind::text_list,
              "a list of tag names like [\"kv_cache\"]", "[\"kv_cache\"]",
              "tags the monitor may offload to host memory"},
  option_spec{"gpumem.pressure", "wake-on-normal", value_kind::boolean, "true or false", "true",
              "wake offloaded tags once pressure is back to normal"},
};

} // namespace

std::string full_key(const option_spec& spec) {
  return std::string(spec.group) + "." + spec.name;
}

const option_spec* find_spec(std::string_view key) {
  for (const auto& spec : options)
    if (full_key(spec) == key)
      return &spec;
  return nullptr;
}

bool known_group(std::string_view group) {
  return std::any_of(options.begin(), options.end(),
                     [&](const option_spec& spec) { return group == spec.group; });
}

std::string known_groups() {
  std::vector<std::string_view> groups;
  for (const auto& spec : options)
    if (std::find(groups.begin(), groups.end(), spec.group) == groups.end())
      groups.emplace_back(spec.group);
  std::string out;
  for (auto group : groups) {
    out += out.empty() ? "" : ", ";
    out += group;
  }
  return out;
}

std::string keys_of_group(std::string_view group) {
  std::string out;
  for (const auto& spec : options) {
    if (group != spec.group)
      continue;
    out += out.empty() ? "" : ", ";
    out += spec.name;
  }
  return out;
}

} // namespace detail

using namespace detail;

// -- gpumem_config ------------------------------------------------------------------

namespace {

// CAF 0.17's string_view takes a const char* only under GCC (CAF_GCC); under clang,
// only arrays and strings. The table's names are static, so views of them live on.
caf::string_view view(const char* text) {
  return {text, std::strlen(text)};
}

} // namespace

gpumem_config::gpumem_config() {
  for (const auto& spec : options) {
    std::string help = std::string(spec.help) + "; " + spec.form + "; default " + spec.fallback;
    opt_group group{custom_options_, view(spec.group)};
    switch (spec.kind) {
      case value_kind::integer:
        group.add<std::int64_t>(view(spec.name), help);
        break;
      case value_kind::fraction:
        group.add<double>(view(spec.name), help);
        break;
      case value_kind::boolean:
      case value_kind::text:
      case value_kind::byte_size:
      case value_kind::entry_list:
        group.add<std::string>(view(spec.name), help);
        break;
      case value_kind::text_list:
      case value_kind::size_list:
        group.add<std::vector<std::string>>(view(spec.name), help);
        break;
    }
  }
}

} // namespace gpumem::actors
