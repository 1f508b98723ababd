// GET /metrics scraped and every line parsed as Prometheus's text format 0.0.4: HELP
// and TYPE once per family before its samples, names and labels as the format allows,
// counters ending in _total, summaries as _sum and _count; and the values agree with
// the runtime's (bytes by device and tag, the sleep state as vLLM's gauge has it).

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "control/http_client.hpp"
#include "control/served_runtime.hpp"

namespace {

using namespace gpumem;
using test::http_get;
using test::http_post;

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Label values between quotes, with \\, \" and \n escapes; fails the test otherwise.
std::map<std::string, std::string> parse_labels(const std::string& text) {
  std::map<std::string, std::string> labels;
  static const std::regex name{"[a-zA-Z_][a-zA-Z0-9_]*"};
  std::size_t i = 0;
  while (i < text.size()) {
    auto eq = text.find('=', i);
    REQUIRE(eq != std::string::npos);
    auto key = text.substr(i, eq - i);
    CHECK(std::regex_match(key, name));
    REQUIRE(eq + 1 < text.size());
    REQUIRE(text[eq + 1] == '"');
    std::string value;
    std::size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\') {
        REQUIRE(j + 1 < text.size());
        char c = text[++j];
        REQUIRE((c == '\\' || c == '"' || c == 'n'));
        value += c == 'n' ? '\n' : c;
      } else {
        value += text[j];
      }
    }
    REQUIRE(j < text.size());
    CHECK(labels.emplace(key, value).second);  // no label twice
    i = j + 1;
    if (i < text.size()) {
      REQUIRE(text[i] == ',');
      ++i;
    }
  }
  return labels;
}

/// Every line of `text`, checked; the samples.
std::vector<sample> parse_exposition(const std::string& text) {
  static const std::regex help{R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+))"};
  static const std::regex type{R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary|histogram|untyped))"};
  static const std::regex line{R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))"};
  std::map<std::string, std::string> types;
  std::set<std::string> helped, closed;
  std::string current;
  std::vector<sample> samples;
  REQUIRE_FALSE(text.empty());
  REQUIRE(text.back() == '\n');
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    INFO(l);
    std::smatch m;
    if (std::regex_match(l, m, help)) {
      CHECK(helped.insert(m[1]).second);  // once per family
      if (current != m[1].str())
        closed.insert(current);
      current = m[1];
      CHECK_FALSE(closed.count(current));  // a family's lines are together
    } else if (std::regex_match(l, m, type)) {
      CHECK(m[1] == current);  // right after its HELP
      CHECK(types.emplace(m[1], m[2]).second);
    } else if (std::regex_match(l, m, line)) {
      sample s;
      s.name = m[1];
      auto family = s.name;
      const auto& t = types[current];
      if (t == "summary" || t == "histogram")
        for (const char* suffix : {"_sum", "_count", "_bucket"})
          if (family == current + suffix && (t == "histogram" || suffix[1] != 'b'))
            family = current;
      CHECK(family == current);  // a sample of the family just declared
      if (t == "counter")
        CHECK((s.name.size() > 6 && s.name.substr(s.name.size() - 6) == "_total"));
      CHECK(s.name.rfind("gpumem_", 0) == 0);
      if (m[3].matched)
        s.labels = parse_labels(m[3]);
      std::size_t used = 0;
      s.value = std::stod(m[4], &used);
      CHECK(used == m[4].str().size());
      samples.push_back(std::move(s));
    } else {
      FAIL("not a line of the text format: " << l);
    }
  }
  return samples;
}

/// The value of the one sample of `name` with `labels`; fails unless exactly one.
double value_of(const std::vector<sample>& samples, const std::string& name,
                const std::map<std::string, std::string>& labels) {
  std::vector<double> found;
  for (const auto& s : samples)
    if (s.name == name && s.labels == labels)
      found.push_back(s.value);
  INFO(name);
  REQUIRE(found.size() == 1);
  return found.front();
}

/// A bucket's bound: its `le` label, "+Inf" included.
double le_of(const std::map<std::string, std::string>& labels) {
  const auto& le = labels.at("le");
  return le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le);
}

/// Checks every histogram of `samples`, per set of labels: buckets cumulative over
/// increasing bounds, the last +Inf, equal to _count. Returns how many it checked.
int check_histograms(const std::vector<sample>& samples) {
  struct series {
    std::vector<std::pair<double, double>> buckets;  // le, value
    double count = -1;
  };
  std::map<std::pair<std::string, std::map<std::string, std::string>>, series> found;
  const std::string bucket = "_bucket", count = "_count";
  for (const auto& s : samples) {
    auto ends_with = [&](const std::string& suffix) {
      return s.name.size() > suffix.size()
             && s.name.compare(s.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(bucket)) {
      auto labels = s.labels;
      REQUIRE(labels.count("le"));
      auto le = le_of(labels);
      labels.erase("le");
      found[{s.name.substr(0, s.name.size() - bucket.size()), labels}].buckets.emplace_back(
        le, s.value);
    } else if (ends_with(count)) {
      auto base = s.name.substr(0, s.name.size() - count.size());
      for (const auto& o : samples)
        if (o.name == base + bucket) {
          found[{base, s.labels}].count = s.value;
          break;
        }
    }
  }
  for (const auto& [key, h] : found) {
    INFO(key.first);
    REQUIRE_FALSE(h.buckets.empty());
    for (std::size_t i = 1; i < h.buckets.size(); ++i) {
      CHECK(h.buckets[i].first > h.buckets[i - 1].first);
      CHECK(h.buckets[i].second >= h.buckets[i - 1].second);
    }
    CHECK(std::isinf(h.buckets.back().first));
    CHECK(h.buckets.back().second == h.count);
  }
  return static_cast<int>(found.size());
}

/// The smallest bound whose bucket holds `n` values of the histogram `name`.
double first_bound_holding(const std::vector<sample>& samples, const std::string& name,
                           const std::map<std::string, std::string>& labels, double n) {
  double best = std::numeric_limits<double>::infinity();
  for (const auto& s : samples) {
    if (s.name != name + "_bucket" || s.value < n)
      continue;
    auto l = s.labels;
    auto le = le_of(l);
    l.erase("le");
    if (l == labels)
      best = std::min(best, le);
  }
  return best;
}

std::vector<sample> scrape(std::uint16_t port) {
  auto a = http_get(port, "/metrics");
  REQUIRE(a.status == 200);
  CHECK(a.content_type == "text/plain; version=0.0.4; charset=utf-8");
  return parse_exposition(a.body);
}

} // namespace

TEST_CASE("control: /metrics parses line by line and agrees with the runtime",
          "[control][metrics]") {
  test::served_runtime s;
  auto w = s.direct().allocate({8 * MiB, "weights", messages::strategy::configured, 0, 0});
  // A tag the exposition must escape.
  auto odd = s.direct().allocate({2 * MiB, "a\"b\\c\nd", messages::strategy::configured, 0, 1});
  REQUIRE(w.ok());
  REQUIRE(odd.ok());
  const auto port = s.port();

  auto awake = scrape(port);
  using labels = std::map<std::string, std::string>;
  CHECK(value_of(awake, "gpumem_allocated_bytes", {{"device", "0"}, {"tag", "weights"}})
        == double(w->size));
  CHECK(value_of(awake, "gpumem_allocated_bytes", {{"device", "1"}, {"tag", "a\"b\\c\nd"}})
        == double(odd->size));
  CHECK(value_of(awake, "gpumem_allocations_total", {{"device", "0"}, {"tag", "weights"}}) == 1);
  CHECK(value_of(awake, "gpumem_device_memory_total_bytes", {{"device", "1"}}) == 256.0 * MiB);
  CHECK(value_of(awake, "gpumem_pressure_level", {{"device", "0"}}) == 0);
  CHECK(value_of(awake, "gpumem_sleep_state", {{"device", "0"}, {"sleep_state", "awake"}}) == 1);
  CHECK(value_of(awake, "gpumem_sleep_state", {{"device", "0"}, {"sleep_state", "discard_all"}})
        == 0);
  CHECK(value_of(awake, "gpumem_sleeps_total", {{"device", "0"}}) == 0);
  CHECK(value_of(awake, "gpumem_allocations_routed_total", labels{}) == 2);

  REQUIRE(http_post(port, "/sleep?level=1").status == 200);
  auto asleep = scrape(port);
  CHECK(value_of(asleep, "gpumem_sleep_state",
                 {{"device", "0"}, {"sleep_state", "weights_offloaded"}}) == 1);
  CHECK(value_of(asleep, "gpumem_sleep_state", {{"device", "1"}, {"sleep_state", "discard_all"}})
        == 1);
  CHECK(value_of(asleep, "gpumem_backed_up_bytes", {{"device", "0"}, {"tag", "weights"}})
        == double(w->requested));
  CHECK(value_of(asleep, "gpumem_active_bytes", {{"device", "0"}, {"tag", "weights"}}) == 0);
  CHECK(value_of(asleep, "gpumem_sleeps_total", {{"device", "0"}}) == 1);
  CHECK(value_of(asleep, "gpumem_sleep_duration_seconds_count", {{"device", "0"}}) == 1);
  CHECK(value_of(asleep, "gpumem_sleep_duration_seconds_sum", {{"device", "0"}}) > 0);
  // The sleep's seconds lie in the first bucket that counts it, and not below it.
  CHECK(check_histograms(asleep) == 6);  // sleep, wake, pressure response; two devices
  auto sleep_seconds = value_of(asleep, "gpumem_sleep_duration_seconds_sum", {{"device", "0"}});
  auto holding = first_bound_holding(asleep, "gpumem_sleep_duration_seconds", {{"device", "0"}}, 1);
  CHECK(sleep_seconds <= holding);
  CHECK(value_of(asleep, "gpumem_sleep_duration_seconds_bucket", {{"device", "0"}, {"le", "+Inf"}})
        == 1);
  CHECK(value_of(asleep, "gpumem_pressure_response_duration_seconds_count", {{"device", "0"}})
        == 0);
  CHECK(value_of(asleep, "gpumem_sleep_backed_up_bytes_total", {{"device", "0"}})
        == double(w->requested));

  REQUIRE(http_post(port, "/wake_up").status == 200);
  auto woke = scrape(port);
  CHECK(value_of(woke, "gpumem_sleep_state", {{"device", "1"}, {"sleep_state", "awake"}}) == 1);
  CHECK(value_of(woke, "gpumem_wakes_total", {{"device", "0"}}) == 1);
  CHECK(value_of(woke, "gpumem_backed_up_bytes", {{"device", "0"}, {"tag", "weights"}}) == 0);
}
