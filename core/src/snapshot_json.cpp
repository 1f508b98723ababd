// The JSON form of memory_snapshot, documented in docs/snapshot.md.
//
// Addresses are "0x..." strings: JSON numbers are doubles in most readers and lose
// precision past 2^53, which device addresses pass. Sizes and counters are integers.
// from_json checks every field it reads and names the first one that is missing or
// has the wrong type; fields it does not know are ignored, so newer writers can add
// some without breaking older readers.

#include <array>
#include <charconv>
#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "gpumem/core/snapshot.hpp"

namespace gpumem::core {
namespace {

// Ordered, so documents list their fields in the order docs/snapshot.md gives them.
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

constexpr std::string_view format_name = "gpumem.snapshot";
constexpr int format_version = 1;

constexpr std::array all_strategies{strategy::pooled, strategy::first_fit, strategy::dedicated};
constexpr std::array all_engine_states{engine_state::awake, engine_state::falling_asleep,
                                       engine_state::asleep, engine_state::waking};
constexpr std::array all_region_states{region_state::resident, region_state::backed_up,
                                       region_state::discarded};

std::string hex_address(device_ptr address) {
  char text[2 + 2 * sizeof(device_ptr) + 1] = {'0', 'x'};
  const auto end = std::to_chars(text + 2, text + sizeof text - 1, address, 16);
  return std::string(text, end.ptr);
}

// --- writing -----------------------------------------------------------------------

ojson stat_json(const stat& s) {
  ojson j;
  j["current"] = s.current;
  j["peak"] = s.peak;
  j["allocated"] = s.allocated;
  j["freed"] = s.freed;
  return j;
}

ojson grid_json(const stat_grid& g) {
  ojson j;
  j["allocated"] = stat_json(g.allocated);
  j["requested"] = stat_json(g.requested);
  j["active"] = stat_json(g.active);
  j["reserved"] = stat_json(g.reserved);
  j["cached"] = stat_json(g.cached);
  j["allocations"] = g.allocations;
  j["frees"] = g.frees;
  j["fragmentation"] = g.fragmentation();
  return j;
}

ojson statistics_json(const engine_statistics& s) {
  ojson j;
  j["total"] = grid_json(s.total);
  ojson tags = ojson::object();
  for (const auto& [tag, grid] : s.tags)
    tags[tag] = grid_json(grid);
  j["tags"] = std::move(tags);
  j["ooms"] = s.ooms;
  j["oom_retries"] = s.oom_retries;
  j["segments_created"] = s.segments_created;
  j["segments_released"] = s.segments_released;
  j["chunks_created"] = s.chunks_created;
  j["chunks_reused"] = s.chunks_reused;
  j["chunks_released"] = s.chunks_released;
  j["sleeps"] = s.sleeps;
  j["wakes"] = s.wakes;
  j["failed_transitions"] = s.failed_transitions;
  j["bytes_backed_up"] = s.bytes_backed_up;
  j["bytes_restored"] = s.bytes_restored;
  j["bytes_discarded"] = s.bytes_discarded;
  j["sleep_seconds"] = s.sleep_seconds;
  j["wake_seconds"] = s.wake_seconds;
  j["trims"] = s.trims;
  j["defragmentations"] = s.defragmentations;
  j["bytes_trimmed"] = s.bytes_trimmed;
  return j;
}

ojson segment_json(const snapshot_segment& segment) {
  ojson j;
  j["address"] = hex_address(segment.address);
  j["size"] = segment.size;
  j["tag"] = segment.tag;
  j["pool"] = segment.pool;
  j["mapped"] = segment.mapped;
  ojson chunks = ojson::array();
  for (const auto& chunk : segment.chunks)
    chunks.push_back(ojson{{"address", hex_address(chunk.address)}, {"size", chunk.size}});
  j["chunks"] = std::move(chunks);
  ojson blocks = ojson::array();
  for (const auto& block : segment.blocks) {
    ojson b;
    b["address"] = hex_address(block.address);
    b["size"] = block.size;
    b["requested"] = block.requested;
    b["allocated"] = block.allocated;
    b["region"] = block.region;
    b["state"] = to_string(block.state);
    blocks.push_back(std::move(b));
  }
  j["blocks"] = std::move(blocks);
  return j;
}

ojson region_json(const snapshot_region& region) {
  ojson j;
  j["id"] = region.id;
  j["address"] = hex_address(region.address);
  j["size"] = region.size;
  j["requested"] = region.requested;
  j["tag"] = region.tag;
  j["strategy"] = to_string(region.how);
  j["state"] = to_string(region.state);
  j["contents_defined"] = region.contents_defined;
  j["last_use_ns"] = region.last_use_ns;
  return j;
}

// --- reading -----------------------------------------------------------------------

/// What went wrong, and where: thrown inside from_json only, caught at its top.
struct malformed {
  std::string field;
  std::string problem;
};

/// A JSON value with its path from the root ("segments[2].blocks[0].size"), so every
/// error names the field it is about.
class reader {
public:
  reader(const json& value, std::string path) : value_(value), path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  reader field(std::string_view name) const {
    const std::string path = path_.empty() ? std::string(name) : path_ + "." + std::string(name);
    if (!value_.is_object())
      throw malformed{path_.empty() ? std::string("the document") : path_, "is not an object"};
    const auto it = value_.find(name);
    if (it == value_.end())
      throw malformed{path, "is missing"};
    return reader(*it, path);
  }

  bool has(std::string_view name) const {
    return value_.is_object() && value_.find(name) != value_.end();
  }

  std::string string() const {
    if (!value_.is_string())
      fail("is not a string");
    return value_.get<std::string>();
  }

  bool boolean() const {
    if (!value_.is_boolean())
      fail("is not a boolean (true or false)");
    return value_.get<bool>();
  }

  double number() const {
    if (!value_.is_number())
      fail("is not a number");
    return value_.get<double>();
  }

  std::uint64_t unsigned_integer() const {
    if (value_.is_number_unsigned())
      return value_.get<std::uint64_t>();
    if (value_.is_number_integer())
      fail("is negative");
    fail("is not an integer");
  }

  std::int64_t signed_integer() const {
    if (value_.is_number_unsigned()) {
      const auto v = value_.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail("is out of range for a signed 64-bit integer");
      return static_cast<std::int64_t>(v);
    }
    if (value_.is_number_integer())
      return value_.get<std::int64_t>();
    fail("is not an integer");
  }

  template <class Int>
  Int integer() const {
    if constexpr (std::is_signed_v<Int>) {
      const std::int64_t v = signed_integer();
      if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max())
        fail("is out of range");
      return static_cast<Int>(v);
    } else {
      const std::uint64_t v = unsigned_integer();
      if (v > std::numeric_limits<Int>::max())
        fail("is out of range");
      return static_cast<Int>(v);
    }
  }

  device_ptr address() const {
    if (!value_.is_string())
      fail("is not an address string (\"0x...\")");
    const auto& text = value_.get_ref<const std::string&>();
    const bool prefixed = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
    device_ptr address = 0;
    if (prefixed) {
      const char* first = text.data() + 2;
      const char* last = text.data() + text.size();
      const auto parsed = std::from_chars(first, last, address, 16);
      if (parsed.ec == std::errc::result_out_of_range)
        fail("is out of range for an address: \"" + text + "\"");
      if (parsed.ec == std::errc{} && parsed.ptr == last)
        return address;
    }
    fail("is not an address string (\"0x\" and hexadecimal digits): \"" + text + "\"");
  }

  /// Calls `each(reader)` for each element.
  template <class F>
  void elements(F&& each) const {
    if (!value_.is_array())
      fail("is not an array");
    for (std::size_t i = 0; i < value_.size(); ++i)
      each(reader(value_[i], path_ + "[" + std::to_string(i) + "]"));
  }

  /// Calls `each(key, reader)` for each member.
  template <class F>
  void members(F&& each) const {
    if (!value_.is_object())
      fail("is not an object");
    for (auto it = value_.begin(); it != value_.end(); ++it)
      each(it.key(), reader(it.value(), path_ + "." + it.key()));
  }

  /// One of `values`, by its to_string() name.
  template <class Enum, std::size_t N>
  Enum one_of(const std::array<Enum, N>& values, std::string_view what) const {
    const std::string name = string();
    for (const Enum v : values)
      if (name == to_string(v))
        return v;
    std::string known;
    for (const Enum v : values)
      known += (known.empty() ? "" : ", ") + std::string(to_string(v));
    fail("is not a " + std::string(what) + " (" + known + "): \"" + name + "\"");
  }

  [[noreturn]] void fail(std::string problem) const {
    throw malformed{path_.empty() ? std::string("the document") : path_, std::move(problem)};
  }

private:
  const json& value_;
  std::string path_;
};

stat read_stat(const reader& r) {
  stat s;
  s.current = r.field("current").signed_integer();
  s.peak = r.field("peak").signed_integer();
  s.allocated = r.field("allocated").signed_integer();
  s.freed = r.field("freed").signed_integer();
  return s;
}

stat_grid read_grid(const reader& r) {
  stat_grid g;
  g.allocated = read_stat(r.field("allocated"));
  g.requested = read_stat(r.field("requested"));
  g.active = read_stat(r.field("active"));
  g.reserved = read_stat(r.field("reserved"));
  g.cached = read_stat(r.field("cached"));
  g.allocations = r.field("allocations").unsigned_integer();
  g.frees = r.field("frees").unsigned_integer();
  // Derived from active and reserved; checked for its type, not stored.
  if (r.has("fragmentation"))
    (void)r.field("fragmentation").number();
  return g;
}

engine_statistics read_statistics(const reader& r) {
  engine_statistics s;
  s.total = read_grid(r.field("total"));
  r.field("tags").members(
    [&](const std::string& tag, const reader& grid) { s.tags[tag] = read_grid(grid); });
  s.ooms = r.field("ooms").unsigned_integer();
  s.oom_retries = r.field("oom_retries").unsigned_integer();
  s.segments_created = r.field("segments_created").unsigned_integer();
  s.segments_released = r.field("segments_released").unsigned_integer();
  s.chunks_created = r.field("chunks_created").unsigned_integer();
  s.chunks_reused = r.field("chunks_reused").unsigned_integer();
  s.chunks_released = r.field("chunks_released").unsigned_integer();
  s.sleeps = r.field("sleeps").unsigned_integer();
  s.wakes = r.field("wakes").unsigned_integer();
  s.failed_transitions = r.field("failed_transitions").unsigned_integer();
  s.bytes_backed_up = r.field("bytes_backed_up").unsigned_integer();
  s.bytes_restored = r.field("bytes_restored").unsigned_integer();
  s.bytes_discarded = r.field("bytes_discarded").unsigned_integer();
  s.sleep_seconds = r.field("sleep_seconds").number();
  s.wake_seconds = r.field("wake_seconds").number();
  s.trims = r.field("trims").unsigned_integer();
  s.defragmentations = r.field("defragmentations").unsigned_integer();
  s.bytes_trimmed = r.field("bytes_trimmed").unsigned_integer();
  return s;
}

snapshot_block read_block(const reader& r) {
  snapshot_block b;
  b.address = r.field("address").address();
  b.size = r.field("size").integer<std::size_t>();
  b.requested = r.field("requested").integer<std::size_t>();
  b.allocated = r.field("allocated").boolean();
  b.region = r.field("region").unsigned_integer();
  b.state = r.field("state").one_of(all_region_states, "region state");
  return b;
}

snapshot_segment read_segment(const reader& r) {
  snapshot_segment s;
  s.address = r.field("address").address();
  s.size = r.field("size").integer<std::size_t>();
  s.tag = r.field("tag").string();
  const reader pool = r.field("pool");
  s.pool = pool.string();
  if (s.pool != "small" && s.pool != "large" && s.pool != "dedicated")
    pool.fail("is not a pool (small, large, dedicated): \"" + s.pool + "\"");
  s.mapped = r.field("mapped").boolean();
  r.field("chunks").elements([&](const reader& c) {
    snapshot_chunk chunk;
    chunk.address = c.field("address").address();
    chunk.size = c.field("size").integer<std::size_t>();
    s.chunks.push_back(chunk);
  });
  r.field("blocks").elements([&](const reader& b) { s.blocks.push_back(read_block(b)); });
  return s;
}

snapshot_region read_region(const reader& r) {
  snapshot_region region;
  region.id = r.field("id").unsigned_integer();
  region.address = r.field("address").address();
  region.size = r.field("size").integer<std::size_t>();
  region.requested = r.field("requested").integer<std::size_t>();
  region.tag = r.field("tag").string();
  region.how = r.field("strategy").one_of(all_strategies, "strategy");
  region.state = r.field("state").one_of(all_region_states, "region state");
  region.contents_defined = r.field("contents_defined").boolean();
  region.last_use_ns = r.field("last_use_ns").unsigned_integer();
  return region;
}

memory_snapshot read_snapshot(const reader& root) {
  const reader format = root.field("format");
  if (format.string() != format_name)
    format.fail("is \"" + format.string() + "\", not \"" + std::string(format_name) + "\"");
  const reader version = root.field("version");
  if (const auto v = version.unsigned_integer(); v != format_version)
    version.fail("is " + std::to_string(v) + "; this reader knows version " +
                 std::to_string(format_version));

  memory_snapshot s;
  s.device = root.field("device").integer<int>();
  s.backend = root.field("backend").string();
  const reader arena = root.field("arena");
  s.arena_base = arena.field("base").address();
  s.arena_size = arena.field("size").integer<std::size_t>();
  s.state = root.field("state").one_of(all_engine_states, "engine state");
  root.field("tags").members([&](const std::string& tag, const reader& state) {
    std::string value = state.string();
    if (value != "awake" && value != "asleep")
      state.fail("is not a tag state (awake, asleep): \"" + value + "\"");
    s.tag_states[tag] = std::move(value);
  });
  root.field("segments").elements([&](const reader& r) { s.segments.push_back(read_segment(r)); });
  root.field("regions").elements([&](const reader& r) { s.regions.push_back(read_region(r)); });
  s.statistics = read_statistics(root.field("statistics"));
  return s;
}

engine_error invalid(std::string message) {
  return engine_error(engine_errc::invalid_config, "snapshot JSON: " + std::move(message));
}

} // namespace

std::string memory_snapshot::to_json(int indent) const {
  ojson j;
  j["format"] = format_name;
  j["version"] = format_version;
  j["device"] = device;
  j["backend"] = backend;
  j["arena"] = ojson{{"base", hex_address(arena_base)}, {"size", arena_size}};
  j["state"] = to_string(state);
  ojson tags = ojson::object();
  for (const auto& [tag, tag_state] : tag_states)
    tags[tag] = tag_state;
  j["tags"] = std::move(tags);
  ojson segment_list = ojson::array();
  for (const auto& segment : segments)
    segment_list.push_back(segment_json(segment));
  j["segments"] = std::move(segment_list);
  ojson region_list = ojson::array();
  for (const auto& region : regions)
    region_list.push_back(region_json(region));
  j["regions"] = std::move(region_list);
  j["statistics"] = statistics_json(statistics);
  // Tags are caller-chosen strings: invalid UTF-8 is replaced rather than thrown on.
  return j.dump(indent < 0 ? -1 : indent, ' ', false, ojson::error_handler_t::replace);
}

engine_result<memory_snapshot> memory_snapshot::from_json(const std::string& text) {
  try {
    json document;
    try {
      document = json::parse(text);
    } catch (const json::parse_error& e) {
      return invalid(std::string("not JSON: ") + e.what());
    }
    return read_snapshot(reader(document, ""));
  } catch (const malformed& m) {
    return invalid(m.field + " " + m.problem);
  } catch (const std::exception& e) {
    return invalid(std::string("unreadable: ") + e.what());
  } catch (...) {
    return invalid("unreadable");
  }
}

} // namespace gpumem::core
