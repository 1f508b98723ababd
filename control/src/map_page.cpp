// The memory map page: the snapshots become one view (what the page draws, with the
// figures that need 64-bit arithmetic done here: offsets in the arena, ages), embedded
// as JSON in the page beside the script that draws it (map_page_assets.cpp).

#include "gpumem/control/map_page.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <stdexcept>

#include "map_page_assets.hpp"

namespace gpumem::control {

namespace {

using nlohmann::json;

struct bad_snapshot {
  std::string what;
};

std::uint64_t address(const json& text, const char* field) {
  const auto& s = text.get_ref<const std::string&>();
  std::uint64_t value = 0;
  auto end = s.data() + s.size();
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
    throw bad_snapshot{std::string(field) + " is not an address string: \"" + s + "\""};
  auto [at, ec] = std::from_chars(s.data() + 2, end, value, 16);
  if (ec != std::errc{} || at != end)
    throw bad_snapshot{std::string(field) + " is not an address string: \"" + s + "\""};
  return value;
}

// Where a segment stands: released while its tag sleeps (unmapped, its addresses kept),
// cached when mapped and wholly free (kept for reuse), mapped otherwise.
const char* segment_state(const json& segment) {
  if (!segment.at("mapped").get<bool>())
    return "released";
  for (const auto& b : segment.at("blocks"))
    if (b.at("allocated").get<bool>())
      return "mapped";
  return "cached";
}

struct region_facts {
  std::string strategy;
  bool contents_defined = true;
  std::uint64_t last_use_ns = 0;
};

json device_view(const map_snapshot& in) {
  auto doc = json::parse(in.json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw bad_snapshot{"not a JSON object"};
  if (doc.value("format", "") != "gpumem.snapshot")
    throw bad_snapshot{"format is not \"gpumem.snapshot\""};

  // A block's age: how long before the snapshot's most recent use its region was last
  // allocated or touched. Steady-clock readings mean nothing alone (docs/snapshot.md).
  std::map<std::uint64_t, region_facts> regions;
  std::uint64_t newest = 0;
  for (const auto& r : doc.at("regions")) {
    region_facts f{r.at("strategy").get<std::string>(), r.at("contents_defined").get<bool>(),
                   r.at("last_use_ns").get<std::uint64_t>()};
    newest = std::max(newest, f.last_use_ns);
    regions[r.at("id").get<std::uint64_t>()] = std::move(f);
  }

  const auto base = address(doc.at("arena").at("base"), "arena.base");
  json segments = json::array();
  for (const auto& s : doc.at("segments")) {
    json blocks = json::array();
    for (const auto& b : s.at("blocks")) {
      json block{{"address", b.at("address")},
                 {"size", b.at("size")},
                 {"requested", b.at("requested")},
                 {"region", b.at("region")}};
      if (b.at("allocated").get<bool>()) {
        block["state"] = b.at("state");
        if (auto r = regions.find(b.at("region").get<std::uint64_t>()); r != regions.end()) {
          block["strategy"] = r->second.strategy;
          block["contents_defined"] = r->second.contents_defined;
          block["age_ns"] = newest - r->second.last_use_ns;
        }
      } else {
        block["state"] = "free";
      }
      blocks.push_back(std::move(block));
    }
    segments.push_back({{"address", s.at("address")},
                        {"offset", address(s.at("address"), "segment address") - base},
                        {"size", s.at("size")},
                        {"tag", s.at("tag")},
                        {"pool", s.at("pool")},
                        {"state", segment_state(s)},
                        {"chunks", s.at("chunks").size()},
                        {"blocks", std::move(blocks)}});
  }
  const auto& statistics = doc.at("statistics");
  if (!statistics.at("total").is_object() || !statistics.at("tags").is_object())
    throw bad_snapshot{"statistics.total and statistics.tags must be objects"};
  return {{"label", in.label},
          {"device", doc.at("device")},
          {"backend", doc.at("backend")},
          {"state", doc.at("state")},
          {"arena", doc.at("arena")},
          {"tags", doc.at("tags")},
          {"regions", regions.size()},
          {"segments", std::move(segments)},
          {"statistics", statistics}};
}

// JSON that is safe inside <script>: '<', '>' and '&' only occur in strings, where
// their \u escapes read the same, and no "</script" or "<!--" can end the element.
std::string script_safe(const json& data) {
  auto text = data.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (char c : text) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

} // namespace

std::string map_page(const std::vector<map_snapshot>& snapshots, const std::string& title) {
  json devices = json::array();
  for (const auto& s : snapshots) {
    try {
      devices.push_back(device_view(s));
    } catch (const bad_snapshot& e) {
      throw std::invalid_argument(s.label + ": not a gpumem snapshot (docs/snapshot.md): " + e.what);
    } catch (const json::exception& e) {
      throw std::invalid_argument(s.label + ": not a gpumem snapshot (docs/snapshot.md): "
                                  + e.what());
    }
  }
  json data{{"title", title}, {"devices", std::move(devices)}};

  std::string page;
  page += map_assets::head;
  page += script_safe(data);
  page += map_assets::tail;
  return page;
}

} // namespace gpumem::control
