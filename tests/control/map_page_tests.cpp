// The memory map page (gpumem/control/map_page.hpp): what it embeds for a known
// snapshot (docs/snapshot.md's example), escaping of the callers' strings, an empty
// device, bad documents; and GET /v1/map on a served runtime. The page's drawing (its
// script) runs in a real browser: tests/control/map_browser_tests.sh.

#include <catch2/catch.hpp>

#include <algorithm>
#include <stdexcept>

#include "control/http_client.hpp"
#include "control/served_runtime.hpp"
#include "gpumem/control/map_page.hpp"

namespace {

using namespace gpumem;
using nlohmann::json;
using test::http_get;

// docs/snapshot.md's example: three segments (weights mapped, kv_cache released while
// asleep, a dedicated activations segment) and five blocks.
const char* const documented = R"json({
  "format": "gpumem.snapshot",
  "version": 1,
  "device": 0,
  "backend": "host",
  "arena": {"base": "0x7f77e2600000", "size": 1073741824},
  "state": "asleep",
  "tags": {"activations": "awake", "kv_cache": "asleep", "weights": "awake"},
  "segments": [
    {
      "address": "0x7f77e2600000",
      "size": 4194304,
      "tag": "weights",
      "pool": "large",
      "mapped": true,
      "chunks": [
        {"address": "0x7f77e2600000", "size": 2097152},
        {"address": "0x7f77e2800000", "size": 2097152}
      ],
      "blocks": [
        {"address": "0x7f77e2600000", "size": 4194304, "requested": 4194304, "allocated": true, "region": 1, "state": "resident"}
      ]
    },
    {
      "address": "0x7f77e2a00000",
      "size": 2097152,
      "tag": "kv_cache",
      "pool": "small",
      "mapped": false,
      "chunks": [],
      "blocks": [
        {"address": "0x7f77e2a00000", "size": 1024, "requested": 0, "allocated": false, "region": 0, "state": "resident"},
        {"address": "0x7f77e2a00400", "size": 4096, "requested": 4096, "allocated": true, "region": 3, "state": "discarded"},
        {"address": "0x7f77e2a01400", "size": 2092032, "requested": 0, "allocated": false, "region": 0, "state": "resident"}
      ]
    },
    {
      "address": "0x7f77e2c00000",
      "size": 4194304,
      "tag": "activations",
      "pool": "dedicated",
      "mapped": true,
      "chunks": [
        {"address": "0x7f77e2c00000", "size": 2097152},
        {"address": "0x7f77e2e00000", "size": 2097152}
      ],
      "blocks": [
        {"address": "0x7f77e2c00000", "size": 4194304, "requested": 3145728, "allocated": true, "region": 4, "state": "resident"}
      ]
    }
  ],
  "regions": [
    {"id": 1, "address": "0x7f77e2600000", "size": 4194304, "requested": 4194304, "tag": "weights", "strategy": "pooled", "state": "resident", "contents_defined": true, "last_use_ns": 2157839395837},
    {"id": 3, "address": "0x7f77e2a00400", "size": 4096, "requested": 4096, "tag": "kv_cache", "strategy": "pooled", "state": "discarded", "contents_defined": true, "last_use_ns": 2157839395837},
    {"id": 4, "address": "0x7f77e2c00000", "size": 4194304, "requested": 3145728, "tag": "activations", "strategy": "dedicated", "state": "resident", "contents_defined": true, "last_use_ns": 2157843395837}
  ],
  "statistics": {
    "total": {
      "allocated": {"current": 8392704, "peak": 8393728, "allocated": 8393728, "freed": 1024},
      "requested": {"current": 7344128, "peak": 7345128, "allocated": 7345128, "freed": 1000},
      "active": {"current": 8388608, "peak": 8393728, "allocated": 8393728, "freed": 5120},
      "reserved": {"current": 8388608, "peak": 10485760, "allocated": 10485760, "freed": 2097152},
      "cached": {"current": 0, "peak": 0, "allocated": 0, "freed": 0},
      "allocations": 4,
      "frees": 1,
      "fragmentation": 0.0
    },
    "tags": {
      "activations": {
        "allocated": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "requested": {"current": 3145728, "peak": 3145728, "allocated": 3145728, "freed": 0},
        "active": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "reserved": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "cached": {"current": 0, "peak": 0, "allocated": 0, "freed": 0},
        "allocations": 1,
        "frees": 0,
        "fragmentation": 0.0
      },
      "kv_cache": {
        "allocated": {"current": 4096, "peak": 5120, "allocated": 5120, "freed": 1024},
        "requested": {"current": 4096, "peak": 5096, "allocated": 5096, "freed": 1000},
        "active": {"current": 0, "peak": 5120, "allocated": 5120, "freed": 5120},
        "reserved": {"current": 0, "peak": 2097152, "allocated": 2097152, "freed": 2097152},
        "cached": {"current": 0, "peak": 0, "allocated": 0, "freed": 0},
        "allocations": 2,
        "frees": 1,
        "fragmentation": 0.0
      },
      "weights": {
        "allocated": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "requested": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "active": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "reserved": {"current": 4194304, "peak": 4194304, "allocated": 4194304, "freed": 0},
        "cached": {"current": 0, "peak": 0, "allocated": 0, "freed": 0},
        "allocations": 1,
        "frees": 0,
        "fragmentation": 0.0
      }
    },
    "ooms": 0,
    "oom_retries": 0,
    "segments_created": 3,
    "segments_released": 0,
    "chunks_created": 5,
    "chunks_reused": 0,
    "chunks_released": 1,
    "sleeps": 1,
    "wakes": 0,
    "failed_transitions": 0,
    "bytes_backed_up": 0,
    "bytes_restored": 0,
    "bytes_discarded": 4096,
    "sleep_seconds": 0.000408776,
    "wake_seconds": 0.0,
    "trims": 0,
    "defragmentations": 0,
    "bytes_trimmed": 0
  }
})json";

const std::string data_open = R"(<script type="application/json" id="gpumem-map-data">)";

/// The data the page embeds, read back as its script reads it.
json embedded(const std::string& page) {
  auto start = page.find(data_open);
  REQUIRE(start != std::string::npos);
  start += data_open.size();
  auto end = page.find("</script>", start);
  REQUIRE(end != std::string::npos);
  return json::parse(page.substr(start, end - start));
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// A snapshot with nothing in it: no tags, segments or regions.
json empty_snapshot() {
  auto doc = json::parse(documented);
  doc["tags"] = json::object();
  doc["segments"] = json::array();
  doc["regions"] = json::array();
  doc["statistics"]["tags"] = json::object();
  doc["state"] = "awake";
  return doc;
}

} // namespace

TEST_CASE("map page: a known snapshot's segments, blocks and figures", "[control][map]") {
  auto page = control::map_page({{"device 0", documented}}, "the example");
  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  // Self-contained: nothing fetched from anywhere.
  const auto lower = lowercase(page);
  CHECK(occurrences(lower, "http") == occurrences(lower, "'http://www.w3.org/2000/svg'"));
  for (const char* fetch : {" src=", "<link", "url(", "@import", "fetch(", "xmlhttprequest"})
    CHECK(lower.find(fetch) == std::string::npos);
  CHECK(page.find(R"(<body data-script-errors="0" data-rendered="0">)") != std::string::npos);

  auto data = embedded(page);
  CHECK(data["title"] == "the example");
  REQUIRE(data["devices"].size() == 1);
  const auto& d = data["devices"][0];
  CHECK(d["label"] == "device 0");
  CHECK(d["state"] == "asleep");
  CHECK(d["regions"] == 3);
  REQUIRE(d["segments"].size() == 3);
  std::vector<std::string> states;
  std::size_t blocks = 0;
  for (const auto& s : d["segments"]) {
    states.push_back(s["state"]);
    blocks += s["blocks"].size();
  }
  CHECK(states == std::vector<std::string>{"mapped", "released", "mapped"});
  CHECK(blocks == 5);

  // Offsets in the arena, computed from the address strings.
  CHECK(d["segments"][0]["offset"] == 0);
  CHECK(d["segments"][1]["offset"] == 0x400000);
  CHECK(d["segments"][2]["offset"] == 0x600000);
  CHECK(d["segments"][1]["chunks"] == 0);

  // Blocks: free ones say so; an allocated one carries its region's state, strategy and
  // age (before the newest use: region 4's, 4 ms after regions 1's and 3's).
  const auto& kv = d["segments"][1]["blocks"];
  CHECK(kv[0]["state"] == "free");
  CHECK(kv[0]["region"] == 0);
  CHECK_FALSE(kv[0].contains("age_ns"));
  CHECK(kv[1]["state"] == "discarded");
  CHECK(kv[1]["region"] == 3);
  CHECK(kv[1]["size"] == 4096);
  CHECK(kv[1]["strategy"] == "pooled");
  CHECK(kv[1]["age_ns"] == 4000000);
  const auto& dedicated = d["segments"][2]["blocks"][0];
  CHECK(dedicated["strategy"] == "dedicated");
  CHECK(dedicated["age_ns"] == 0);
  CHECK(dedicated["requested"] == 3145728);

  // The statistics as the snapshot has them, for the grid and the chart.
  CHECK(d["statistics"]["total"]["reserved"]["peak"] == 10485760);
  CHECK(d["statistics"]["tags"]["kv_cache"]["frees"] == 1);
}

TEST_CASE("map page: a wholly free mapped segment is cached", "[control][map]") {
  auto doc = json::parse(documented);
  auto& weights = doc["segments"][0]["blocks"][0];
  weights["allocated"] = false;
  weights["region"] = 0;
  weights["requested"] = 0;
  auto data = embedded(control::map_page({{"d", doc.dump()}}, "t"));
  CHECK(data["devices"][0]["segments"][0]["state"] == "cached");
  CHECK(data["devices"][0]["segments"][0]["blocks"][0]["state"] == "free");
}

TEST_CASE("map page: tags and titles cannot break out of the data element", "[control][map]") {
  const std::string nasty = "</script><b>x";
  const std::string comment = "<!--<script>";
  auto doc = json::parse(documented);
  for (auto& s : doc["segments"])
    if (s["tag"] == "kv_cache")
      s["tag"] = nasty;
  for (auto& r : doc["regions"])
    if (r["tag"] == "kv_cache")
      r["tag"] = nasty;
  doc["tags"].erase("kv_cache");
  doc["tags"][nasty] = "asleep";
  doc["tags"][comment + "&amp;\xe2\x80\xa8"] = "awake";
  doc["statistics"]["tags"][nasty] = doc["statistics"]["tags"]["kv_cache"];
  doc["statistics"]["tags"].erase("kv_cache");
  doc["tags"]["bad \xff utf-8"] = "awake";

  auto page = control::map_page({{nasty, doc.dump(-1, ' ', false, json::error_handler_t::replace)}},
                                "map of " + nasty);
  // Three script elements end, and only they: the handler of errors, the data, the drawing.
  CHECK(occurrences(lowercase(page), "</script") == 3);
  CHECK(occurrences(lowercase(page), "<script") == 3);
  CHECK(page.find("<b>x") == std::string::npos);
  CHECK(page.find("<!--") == std::string::npos);
  CHECK(page.find("&amp;") == std::string::npos);

  // And the strings come back whole for the script.
  auto data = embedded(page);
  CHECK(data["title"] == "map of " + nasty);
  const auto& d = data["devices"][0];
  CHECK(d["label"] == nasty);
  CHECK(d["segments"][1]["tag"] == nasty);
  CHECK(d["tags"][nasty] == "asleep");
  CHECK(d["tags"].contains(comment + "&amp;\xe2\x80\xa8"));
  CHECK(d["tags"].contains("bad \xef\xbf\xbd utf-8"));
  CHECK(d["statistics"]["tags"].contains(nasty));
}

TEST_CASE("map page: an empty device, several snapshots, no snapshot", "[control][map]") {
  auto data = embedded(control::map_page(
    {{"device 0", empty_snapshot().dump()}, {"device 1", documented}}, "two"));
  REQUIRE(data["devices"].size() == 2);
  CHECK(data["devices"][0]["label"] == "device 0");
  CHECK(data["devices"][0]["segments"].empty());
  CHECK(data["devices"][0]["regions"] == 0);
  CHECK(data["devices"][0]["tags"].empty());
  CHECK(data["devices"][1]["segments"].size() == 3);

  auto none = embedded(control::map_page({}, "nothing"));
  CHECK(none["devices"].empty());
}

TEST_CASE("map page: a document it cannot draw is refused, naming it", "[control][map]") {
  auto refused = [](const std::string& text, const std::string& expected) {
    try {
      (void)control::map_page({{"a.json", text}}, "t");
      FAIL("map_page drew " << text);
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      CHECK_THAT(e.what(), Catch::StartsWith("a.json: not a gpumem snapshot"));
      CHECK_THAT(e.what(), Catch::Contains(expected));
    }
  };
  refused("{", "not a JSON object");
  refused("[]", "not a JSON object");
  refused(R"({"format": "other"})", "format");
  auto doc = json::parse(documented);
  doc.erase("segments");
  refused(doc.dump(), "segments");
  doc = json::parse(documented);
  doc["segments"][0]["address"] = "1234";
  refused(doc.dump(), "segment address is not an address string");
  doc = json::parse(documented);
  doc["statistics"]["tags"] = json::array();
  refused(doc.dump(), "statistics");
}

TEST_CASE("control: GET /v1/map draws every device, or one", "[control][map][v1]") {
  test::served_runtime s;
  REQUIRE(s.direct().allocate({6 * MiB, "weights", messages::strategy::configured, 0, 0}).ok());
  REQUIRE(s.direct().allocate({4 * MiB, "kv_cache", messages::strategy::configured, 0, 1}).ok());
  const auto port = s.port();

  auto all = http_get(port, "/v1/map");
  REQUIRE(all.status == 200);
  CHECK(all.content_type == "text/html; charset=utf-8");
  auto data = embedded(all.body);
  REQUIRE(data["devices"].size() == 2);
  for (int d = 0; d < 2; ++d) {
    auto snapshot = http_get(port, "/v1/snapshot?device=" + std::to_string(d)).json();
    const auto& drawn = data["devices"][d];
    CHECK(drawn["label"] == "device " + std::to_string(d));
    CHECK(drawn["device"] == d);
    REQUIRE(drawn["segments"].size() == snapshot["segments"].size());
    for (std::size_t i = 0; i < snapshot["segments"].size(); ++i)
      CHECK(drawn["segments"][i]["blocks"].size() == snapshot["segments"][i]["blocks"].size());
  }
  CHECK(data["devices"][1]["segments"][0]["tag"] == "kv_cache");

  auto one = http_get(port, "/v1/map?device=1");
  REQUIRE(one.status == 200);
  REQUIRE(embedded(one.body)["devices"].size() == 1);
  CHECK(embedded(one.body)["devices"][0]["device"] == 1);

  // A tag asleep: its segment is released, still drawn.
  REQUIRE(test::http_post(port, "/sleep?level=2&tags=kv_cache").status == 200);
  auto asleep = embedded(http_get(port, "/v1/map?device=1").body);
  CHECK(asleep["devices"][0]["segments"][0]["state"] == "released");
  CHECK(asleep["devices"][0]["segments"][0]["blocks"][0]["state"] == "discarded");

  // Refused as every route refuses: JSON errors.
  auto check_refused = [](const test::http_answer& a, unsigned status, const std::string& code) {
    INFO(a.body);
    CHECK(a.status == status);
    CHECK(a.content_type == "application/json");
    CHECK(a.error() == code);
  };
  check_refused(http_get(port, "/v1/map?device=2"), 400, "unknown_device");
  check_refused(http_get(port, "/v1/map?device=x"), 400, "bad_parameter");
  check_refused(http_get(port, "/v1/map?device=0&device=1"), 400, "bad_parameter");
  check_refused(http_get(port, "/v1/map?devices=0"), 400, "unknown_parameter");
  auto posted = test::http_post(port, "/v1/map");
  check_refused(posted, 405, "method_not_allowed");
  CHECK(posted.allow == "GET");
}
