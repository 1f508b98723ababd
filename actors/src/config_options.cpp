// The option table: each option's key, field, range and help, written once. Its
// default is the field's default in the component's own options struct.

#include "config_options.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "gpumem/core/engine_types.hpp"
#include "gpumem/cuda/byte_units.hpp"

namespace gpumem::actors::detail {

namespace {

// The field an option reads and writes, for a const or a mutable runtime_config.
#define FIELD(path) [](auto& c) -> auto& { return c.path; }

// A TOML basic string: "text" with its escapes.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof code, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += code;
    } else {
      out += c;
    }
  }
  return out + '"';
}

// The shortest text that reads back as `v`: 0.8, 1.7.
std::string number(double v) {
  char text[32];
  auto end = std::to_chars(text, text + sizeof text, v).ptr;
  return std::string(text, end);
}

[[noreturn]] void expected(const std::string& key, const std::string& form, const toml::node& got) {
  throw refused{key, "expected " + form + ", got " + render(got)};
}

// -- the kinds of option ----------------------------------------------------------

// An integer, or a duration in whole milliseconds ("period-ms").
template <class Field>
option integer(std::string key, Field field, std::int64_t min, std::int64_t max, std::string help) {
  using T = std::remove_reference_t<decltype(field(std::declval<runtime_config&>()))>;
  constexpr bool ms = requires(T t) { t.count(); };
  auto form = std::string(ms ? "a whole number of milliseconds" : "an integer") + " from "
              + std::to_string(min) + " to " + std::to_string(max);
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) {
            auto n = v.value_exact<std::int64_t>();
            if (!n || *n < min || *n > max)
              expected(key, form, v);
            if constexpr (ms)
              field(c) = std::chrono::milliseconds{*n};
            else
              field(c) = static_cast<T>(*n);
          },
          [=](const runtime_config& c) {
            if constexpr (ms)
              return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(field(c)).count());
            else
              return std::to_string(field(c));
          }};
}

// A fraction (an integer is taken too: 1 is 1.0) that `fits` accepts.
template <class Field>
option fraction(std::string key, Field field, std::string form, bool (*fits)(double), std::string help) {
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) {
            auto x = v.value<double>();  // an integer converts
            if (!x || v.is_boolean() || !std::isfinite(*x) || !fits(*x))
              expected(key, form, v);
            field(c) = *x;
          },
          [=](const runtime_config& c) { return number(field(c)); }};
}

template <class Field>
option boolean(std::string key, Field field, std::string help) {
  return {key, std::move(help), "true or false",
          [=](runtime_config& c, const toml::node& v) {
            if (!v.is_boolean())
              expected(key, "true or false", v);
            field(c) = *v.value<bool>();
          },
          [=](const runtime_config& c) { return std::string(field(c) ? "true" : "false"); }};
}

// A string that `accepts` takes.
template <class Field>
option text(std::string key, Field field, std::string form, bool (*accepts)(std::string_view),
            std::string help) {
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) {
            auto s = v.value_exact<std::string>();
            if (!s || !accepts(*s))
              expected(key, form, v);
            field(c) = *s;
          },
          [=](const runtime_config& c) { return quote(field(c)); }};
}

// "" or "host:port" ("[::1]:8080" too), the port from 0 to 65535.
bool listen_address(std::string_view text) {
  auto colon = text.rfind(':');
  auto digits = text.substr(colon == std::string_view::npos ? text.size() : colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  return text.empty() || (colon != std::string_view::npos && colon > 0 && !digits.empty()
                          && ec == std::errc{} && end == digits.data() + digits.size() && port <= 65535);
}

// Any string (a path, checked where it is used).
bool any_text(std::string_view) {
  return true;
}

// "host:port" a node can listen on.
bool node_address(std::string_view text) {
  return parse_listen_address(text).ok();
}

// One of `names`: "least-loaded", ...
template <class Field, class Names>
option choice(std::string key, Field field, const Names& names, std::string help) {
  std::string form;
  for (std::size_t i = 0; i < names.size(); ++i)
    form += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + quote(names[i].first);
  return {key, std::move(help), form,
          [=, &names](runtime_config& c, const toml::node& v) {
            auto text = v.value_exact<std::string>();
            auto i = std::find_if(names.begin(), names.end(),
                                  [&](const auto& n) { return text && n.first == *text; });
            if (i == names.end())
              expected(key, form, v);
            field(c) = i->second;
          },
          [=, &names](const runtime_config& c) {
            auto i = std::find_if(names.begin(), names.end(),
                                  [&](const auto& n) { return n.second == field(c); });
            return quote(i == names.end() ? "?" : i->first);
          }};
}

// A byte size: an integer, or a string with a binary suffix ("256M").
std::size_t bytes_of(const std::string& key, const std::string& form, const toml::node& v) {
  std::size_t n = 0;
  if (auto i = v.value_exact<std::int64_t>(); i && *i >= 0)
    return static_cast<std::size_t>(*i);
  if (auto s = v.value_exact<std::string>(); s && parse_byte_size(*s, n))
    return n;
  expected(key, form, v);
}

std::string show_bytes(std::size_t n) {
  const std::pair<std::size_t, char> units[] = {{GiB << 10, 'T'}, {GiB, 'G'}, {MiB, 'M'}, {KiB, 'K'}};
  for (auto [unit, suffix] : units)
    if (n != 0 && n % unit == 0)
      return quote(std::to_string(n / unit) + suffix);
  return std::to_string(n);
}

template <class Field>
option bytes(std::string key, Field field, std::string form, std::string help) {
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) { field(c) = bytes_of(key, form, v); },
          [=](const runtime_config& c) { return show_bytes(field(c)); }};
}

template <class Field>
option byte_list(std::string key, Field field, std::string form, std::string help) {
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) {
            if (!v.is_array())
              expected(key, form, v);
            field(c).clear();
            for (const auto& element : *v.as_array())
              field(c).push_back(bytes_of(key, form, element));
          },
          [=](const runtime_config& c) {
            std::string out;
            for (auto n : field(c))
              out += (out.empty() ? "" : ", ") + show_bytes(n);
            return "[" + out + "]";
          },
          true};
}

// A list of strings, each checked by `entry` (which may throw); `entries` lists them.
template <class Field, class Entry, class Entries>
option strings(std::string key, Field field, std::string form, Entry entry, Entries entries,
               std::string help) {
  return {key, std::move(help), form,
          [=](runtime_config& c, const toml::node& v) {
            const auto* list = v.as_array();
            if (!list || std::any_of(list->begin(), list->end(), [](auto& e) { return !e.is_string(); }))
              expected(key, form, v);
            field(c) = {};
            std::size_t i = 0;
            for (const auto& element : *v.as_array())
              entry(field(c), ++i, *element.value<std::string>());
          },
          [=](const runtime_config& c) {
            std::string out;
            for (const auto& text : entries(field(c)))
              out += (out.empty() ? "" : ", ") + quote(text);
            return "[" + out + "]";
          },
          true};
}

template <class Field>
option tag_names(std::string key, Field field, std::string help) {
  return strings(
    key, field, "a list of tag names like [\"kv_cache\"]",
    [key](std::vector<std::string>& tags, std::size_t, const std::string& tag) {
      if (tag.empty())
        throw refused{key, "expected non-empty tag names, got an empty one"};
      tags.push_back(tag);
    },
    [](const std::vector<std::string>& tags) { return tags; }, std::move(help));
}

std::string trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t");
  auto last = text.find_last_not_of(" \t");
  return first == std::string_view::npos ? "" : std::string(text.substr(first, last - first + 1));
}

const std::array<std::pair<std::string_view, core::strategy>, 3> strategy_names{
  {{core::to_string(core::strategy::pooled), core::strategy::pooled},
   {core::to_string(core::strategy::first_fit), core::strategy::first_fit},
   {core::to_string(core::strategy::dedicated), core::strategy::dedicated}}};

constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 9> log_level_names{
  {{"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
   {"info", spdlog::level::info}, {"warn", spdlog::level::warn},
   {"warning", spdlog::level::warn}, {"err", spdlog::level::err},
   {"error", spdlog::level::err}, {"critical", spdlog::level::critical},
   {"off", spdlog::level::off}}};

using strategy_map = std::map<std::string, core::strategy, std::less<>>;

void tag_strategy(strategy_map& map, std::size_t i, const std::string& entry) {
  auto bad = [&](const std::string& why) {
    throw refused{"gpumem.engine.tag-strategies",
                  "entry " + std::to_string(i) + " \"" + entry + "\": " + why
                    + "; expected \"tag=strategy\" with strategy pooled, first_fit or dedicated"};
  };
  auto eq = entry.find('=');
  if (eq == std::string::npos)
    bad("no '='");
  auto tag = trim(std::string_view(entry).substr(0, eq));
  auto name = trim(std::string_view(entry).substr(eq + 1));
  auto how = core::parse_strategy(name);
  if (tag.empty())
    bad("empty tag name");
  if (!how)
    bad("unknown strategy \"" + name + "\"");
  if (!map.emplace(tag, *how).second)
    bad("tag \"" + tag + "\" is given a strategy twice");
}

std::vector<std::string> tag_strategy_entries(const strategy_map& map) {
  std::vector<std::string> out;
  for (const auto& [tag, how] : map)
    out.push_back(tag + "=" + core::to_string(how));
  return out;
}

// clang-format off
std::vector<option> make_table() {
  using namespace std::string_literals;
  return {
    choice("gpumem.backend", FIELD(backend), backend_kind_names,
           "device layer: auto (CUDA where a VMM-capable GPU exists, else host), host (devices emulated in host memory, see [gpumem.host]) or cuda"),
    choice("gpumem.while-asleep", FIELD(allocator.while_asleep), asleep_behaviour_names,
           "an allocation for a sleeping tag waits for its wake (queue) or fails at once with device_asleep (fail)"),
    integer("gpumem.request-timeout-ms", FIELD(balancer.request_timeout), 1, 3'600'000,
            "timeout of every request to another actor (a dead remote peer gets no error in CAF 0.17, only this)"),
    choice("gpumem.log-level", FIELD(log_level), log_level_names, "log level (spdlog)"),

    text("gpumem.control.listen", FIELD(control.listen), "\"host:port\" (port 0: any free one) or \"\" (none)",
         listen_address, "address the HTTP control plane (gpumem serve) listens on; keep it on loopback unless the network is trusted, since its routes put devices to sleep without credentials"),
    integer("gpumem.control.read-timeout-ms", FIELD(control.read_timeout), 1, 3'600'000,
            "a request must arrive in full within this, or its connection is closed (also the idle time of a kept-alive connection)"),
    integer("gpumem.control.write-timeout-ms", FIELD(control.write_timeout), 1, 3'600'000,
            "an answer must be taken by the client within this, or its connection is closed"),
    bytes("gpumem.control.body-limit", FIELD(control.body_limit), "a byte size",
          "largest request body read; a larger one is answered 413 and changes nothing"),
    integer("gpumem.control.max-connections", FIELD(control.max_connections), 1, 65'536,
            "connections served at once; one more is answered 503 and closed"),

    text("gpumem.node.listen", FIELD(node.listen), "\"host:port\" (port 0: any free one)",
         node_address, "address gpumem node accepts peers on; beyond loopback only with TLS (certificate, key, ca-file) or --insecure"),
    text("gpumem.node.certificate", FIELD(node.tls.certificate), "a path, or \"\" (no TLS)", any_text,
         "the node's certificate chain (PEM); with key and ca-file the node speaks mutual TLS and serves only peers whose certificate the CA signed"),
    text("gpumem.node.key", FIELD(node.tls.key), "a path, or \"\" (no TLS)", any_text,
         "the private key of the certificate (PEM, not encrypted)"),
    text("gpumem.node.ca-file", FIELD(node.tls.ca_file), "a path, or \"\" (no TLS)", any_text,
         "the CA certificate(s) that sign the peers' certificates (PEM)"),

    strings("gpumem.cluster.nodes", FIELD(cluster.nodes), "a list of \"host:port\" like [\"10.0.0.2:9471\"]",
            [](std::vector<std::string>& nodes, std::size_t, const std::string& address) {
              auto where = parse_listen_address(address);
              if (!where || where->port == 0)
                throw refused{"gpumem.cluster.nodes", "expected \"host:port\" with a port above 0, got \"" + address + "\""};
              nodes.push_back(address);
            },
            [](const std::vector<std::string>& nodes) { return nodes; },
            "the nodes gpumem cluster watches from the start (more may join while it runs)"),
    integer("gpumem.cluster.heartbeat-ms", FIELD(cluster.heartbeat), 1, 3'600'000,
            "how often the cluster asks each node whether it is there, and tries again to reach those lost"),
    integer("gpumem.cluster.deadline-ms", FIELD(cluster.deadline), 1, 3'600'000,
            "a node that does not answer within this is lost (a half-open connection tells nothing else); also the deadline of the cluster's requests to a node"),
    text("gpumem.cluster.listen", FIELD(cluster.listen), "\"host:port\" (port 0: any free one)",
         node_address, "address gpumem cluster accepts clients on; beyond loopback only with TLS (the files of [gpumem.node]) or --insecure"),

    integer("gpumem.host.devices", FIELD(host.devices), 1, 64, "number of emulated devices"),
    bytes("gpumem.host.capacity", FIELD(host.capacity), "a byte size, a non-zero multiple of granularity",
          "memory of each emulated device"),
    byte_list("gpumem.host.capacities", FIELD(host.capacities), "a list of byte sizes like [\"1G\", \"512M\"], one per device",
              "per-device memory instead: the device count is its length (devices, if given, must agree; capacity must then be left out)"),
    bytes("gpumem.host.granularity", FIELD(host.granularity), "a power of two byte size of at least 2M",
          "allocation granularity of the emulated devices"),

    boolean("gpumem.cuda.peer-access", FIELD(cuda.peer_access),
            "grant every peer GPU that can reach it read-write access to each chunk, as PyTorch's expandable segments do (false: the owning GPU only)"),
    boolean("gpumem.cuda.exportable", FIELD(cuda.exportable),
            "create chunks exportable as POSIX file descriptors where the GPU supports it"),
    boolean("gpumem.cuda.rdma-capable", FIELD(cuda.rdma_capable),
            "create chunks GPUDirect RDMA capable where the GPU supports it with VMM"),

    bytes("gpumem.engine.arena-size", FIELD(engine.arena_size), "0 or a byte size, a multiple of the granularity",
          "virtual address space reserved per engine; 0: twice the device's memory"),
    bytes("gpumem.engine.small-chunk", FIELD(engine.small_chunk), "a byte size, a multiple of the granularity",
          "small physical chunk"),
    bytes("gpumem.engine.large-chunk", FIELD(engine.large_chunk), "a byte size, a multiple of small-chunk",
          "large physical chunk: segments are built of large chunks, then small ones for the remainder"),
    bytes("gpumem.engine.small-segment", FIELD(engine.small_segment), "a byte size, a multiple of small-chunk",
          "segment shared by small requests"),
    bytes("gpumem.engine.small-threshold", FIELD(engine.small_threshold), "a byte size from 1 to small-segment",
          "requests up to this size share small segments"),
    bytes("gpumem.engine.default-alignment", FIELD(engine.default_alignment), "a power of two from 256 to the granularity",
          "alignment of requests that ask for none"),
    bytes("gpumem.engine.cache-limit", FIELD(engine.cache_limit), "a byte size",
          "wholly free segments kept mapped for reuse; beyond this they go back to the device"),
    bytes("gpumem.engine.wake-margin", FIELD(engine.wake_margin), "a byte size",
          "device memory a wake leaves free beyond what it maps"),
    bytes("gpumem.engine.copy-piece", FIELD(engine.copy_piece), "a non-zero byte size",
          "sleep and wake copy in pieces of this size"),
    integer("gpumem.engine.copies-in-flight", FIELD(engine.copies_in_flight), 1, 1024,
            "sleep and wake copies in flight"),
    tag_names("gpumem.engine.packed-tags", FIELD(engine.packed_tags),
              "tags whose large allocations live long (a model's weights): their newest segment grows in place"),
    choice("gpumem.engine.default-strategy", FIELD(allocator.default_strategy), strategy_names,
           "allocation strategy of requests that ask for none: pooled (best fit in the tag's pool), first_fit (O(1), looser) or dedicated (own chunks, released on free)"),
    strings("gpumem.engine.tag-strategies", FIELD(allocator.tag_strategies),
            "a list of \"tag=strategy\" entries like [\"kv_cache=dedicated\"] (command line: tag=strategy,tag=strategy)",
            tag_strategy, tag_strategy_entries, "per-tag overrides of default-strategy, each tag at most once"),

    choice("gpumem.balancer.routing", FIELD(balancer.routing), routing_policy_names,
           "how the balancer picks a device for a request that names none: most free memory, the next in turn, or where the tag already lives"),
    integer("gpumem.balancer.transition-timeout-ms", FIELD(balancer.transition_timeout), 1, 86'400'000,
            "deadline of each device's sleep or wake in sleep_all / wake_all (they copy whole tags); a late one is undone"),
    integer("gpumem.balancer.refresh-interval-ms", FIELD(balancer.refresh_interval), 0, 3'600'000,
            "how often the balancer asks every device for its free memory; 0: never (only after sleeps, wakes, refusals and pressure events)"),

    integer("gpumem.pressure.period-ms", FIELD(pressure.period), 1, 3'600'000,
            "how often the pressure monitor polls every device's memory in use"),
    fraction("gpumem.pressure.warning", FIELD(pressure.warning), "a fraction between 0 and 1",
             [](double x) { return x > 0 && x < 1; }, "fraction of memory in use that raises a warning; below critical"),
    fraction("gpumem.pressure.critical", FIELD(pressure.critical), "a fraction above 0, at most 1",
             [](double x) { return x > 0 && x <= 1; }, "fraction of memory in use that is critical; above warning"),
    fraction("gpumem.pressure.hysteresis", FIELD(pressure.hysteresis), "a fraction from 0 to below warning",
             [](double x) { return x >= 0 && x < 1; }, "a level is left only once use falls below its threshold minus this"),
    boolean("gpumem.pressure.trim-at-warning", FIELD(allocator.pressure.trim_at_warning),
            "at warning, release cached free segments to the device"),
    boolean("gpumem.pressure.offload-at-critical", FIELD(allocator.pressure.offload_at_critical),
            "at critical, defragment, then offload offloadable tags to host memory, least recently used first, until use falls below critical minus hysteresis (false: defragment only)"),
    tag_names("gpumem.pressure.offloadable-tags", FIELD(allocator.pressure.offloadable_tags),
              "tags an allocator may offload at critical"),
    boolean("gpumem.pressure.wake-on-normal", FIELD(allocator.pressure.wake_on_normal),
            "wake offloaded tags once pressure is back to normal (never tags a client put to sleep)"),
  };
}
// clang-format on

} // namespace

const std::vector<option>& options() {
  static const auto table = make_table();
  return table;
}

const option* find_option(std::string_view key) {
  for (const auto& o : options())
    if (o.key == key)
      return &o;
  return nullptr;
}

const std::vector<std::pair<std::string, std::string>>& groups() {
  static const std::vector<std::pair<std::string, std::string>> list{
    {"gpumem", "The runtime."},
    {"gpumem.host", "The host backend's emulated devices (backend host, or auto where no GPU is found)."},
    {"gpumem.control", "The HTTP control plane (gpumem serve): vLLM- and SGLang-compatible sleep and wake, "
                       "status, statistics, snapshots and Prometheus metrics."},
    {"gpumem.node", "A node (gpumem node) serves the runtime to clients in other processes over CAF's network layer."},
    {"gpumem.cluster", "A cluster (gpumem cluster) watches nodes and serves them as one: status, placement, collective sleep and wake."},
    {"gpumem.cuda", "The CUDA driver backend (backend cuda, or auto where a GPU is found)."},
    {"gpumem.engine", "One engine per device lays out its memory. Multiples of the granularity are checked "
                      "against gpumem.host.granularity for the host backend, CUDA's 2 MiB otherwise."},
    {"gpumem.balancer", "The balancer routes requests over the devices."},
    {"gpumem.pressure", "The pressure monitor polls every device's memory in use (a fraction of its total); "
                        "each device's allocator responds as set here."},
  };
  return list;
}

toml::table flag_value(std::string_view text, bool list) {
  toml::table value;
  if (list) {  // "a," is "a" and "": the empty one is refused
    toml::array items;
    for (std::size_t start = 0; !text.empty() && start <= text.size();) {
      auto comma = std::min(text.find(',', start), text.size());
      items.push_back(std::string(text.substr(start, comma - start)));
      start = comma + 1;
    }
    value.insert("v", std::move(items));
    return value;
  }
  try {
    auto parsed = toml::parse("v = " + std::string(text));
    if (auto* v = parsed.get("v"); v && (v->is_number() || v->is_boolean()))
      return parsed;
  } catch (const toml::parse_error&) {  // not a number: a string
  }
  value.insert("v", std::string(text));
  return value;
}

std::string render(const toml::node& value) {
  if (auto s = value.value_exact<std::string>())
    return quote(*s);
  if (auto x = value.value_exact<double>())
    return number(*x);
  if (const auto* list = value.as_array()) {
    std::string out;
    for (const auto& element : *list)
      out += (out.empty() ? "" : ", ") + render(element);
    return "[" + out + "]";
  }
  if (value.is_table())
    return "a table";
  std::ostringstream out;
  value.visit([&](const auto& v) { out << v; });
  return out.str();
}

// -- the relations ------------------------------------------------------------------

namespace {

bool power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

[[noreturn]] void fail(const std::string& key, const std::string& what) { throw refused{key, what}; }

} // namespace

void check_relations(const runtime_config& config,
                     const std::function<bool(const std::string& key)>& given) {
  const auto& host = config.host;
  if (!power_of_two(host.granularity) || host.granularity < 2 * MiB)
    fail("gpumem.host.granularity", "expected a power of two of at least 2M, got " + format_bytes(host.granularity));
  if (!host.capacities.empty()) {
    if (given("gpumem.host.capacity"))
      fail("gpumem.host.capacities", "give either gpumem.host.capacity (one for all) or "
                                     "gpumem.host.capacities (one per device), not both");
    if (given("gpumem.host.devices") && host.capacities.size() != static_cast<std::size_t>(host.devices))
      fail("gpumem.host.capacities", "lists " + std::to_string(host.capacities.size())
                                       + " capacities but gpumem.host.devices is " + std::to_string(host.devices));
    if (host.capacities.size() > 64)
      fail("gpumem.host.capacities", "lists " + std::to_string(host.capacities.size()) + " devices; at most 64");
  }
  auto capacities = host.device_capacities();
  for (std::size_t i = 0; i < capacities.size(); ++i)
    if (capacities[i] == 0 || capacities[i] % host.granularity != 0)
      fail(host.capacities.empty() ? "gpumem.host.capacity" : "gpumem.host.capacities",
           "device " + std::to_string(i) + ": expected a non-zero multiple of the granularity "
             + format_bytes(host.granularity) + ", got " + std::to_string(capacities[i]) + " bytes");

  // A node's TLS takes all three files or none (their files are read when it starts).
  const auto& tls = config.node.tls;
  if (!tls.empty() && (tls.certificate.empty() || tls.key.empty() || tls.ca_file.empty()))
    fail(tls.certificate.empty() ? "gpumem.node.certificate"
         : tls.key.empty()       ? "gpumem.node.key"
                                 : "gpumem.node.ca-file",
         "TLS needs gpumem.node.certificate, gpumem.node.key and gpumem.node.ca-file together");

  // The engine's sizes against the granularity of every backend it may run on.
  std::size_t granularity = 2 * MiB;  // CUDA's minimum
  std::string name = "CUDA's minimum granularity";
  if (config.backend != backend_kind::cuda && host.granularity > granularity)
    granularity = host.granularity;
  if (config.backend == backend_kind::host || granularity > 2 * MiB)
    name = "the granularity (gpumem.host.granularity)";
  auto g = name + " " + format_bytes(granularity);
  const auto& e = config.engine;
  auto got = [](std::size_t n) { return ", got " + format_bytes(n); };
  auto small = "gpumem.engine.small-chunk " + format_bytes(e.small_chunk);
  if (e.small_chunk == 0 || e.small_chunk % granularity != 0)
    fail("gpumem.engine.small-chunk", "expected a non-zero multiple of " + g + got(e.small_chunk));
  if (e.large_chunk < e.small_chunk || e.large_chunk % e.small_chunk != 0)
    fail("gpumem.engine.large-chunk", "expected a multiple of " + small + got(e.large_chunk));
  if (e.small_segment < e.small_chunk || e.small_segment % e.small_chunk != 0)
    fail("gpumem.engine.small-segment", "expected a multiple of " + small + got(e.small_segment));
  if (e.small_threshold == 0 || e.small_threshold > e.small_segment)
    fail("gpumem.engine.small-threshold", "expected a size from 1 byte to gpumem.engine.small-segment "
                                            + format_bytes(e.small_segment) + got(e.small_threshold));
  if (!power_of_two(e.default_alignment) || e.default_alignment < 256 || e.default_alignment > granularity)
    fail("gpumem.engine.default-alignment", "expected a power of two from 256 to " + g + ", got "
                                              + std::to_string(e.default_alignment));
  if (e.arena_size != 0 && (e.arena_size % granularity != 0 || e.arena_size < e.small_segment))
    fail("gpumem.engine.arena-size", "expected 0 or a multiple of " + g
                                       + " holding at least one small segment" + got(e.arena_size));
  if (e.copy_piece == 0)
    fail("gpumem.engine.copy-piece", "expected a non-zero byte size, got 0");
  // The engine's own check, as a net under the ones above.
  cuda::device_properties props;
  props.total_memory = capacities.empty() ? 0 : capacities.front();
  props.vmm_supported = true;
  props.granularity_minimum = props.granularity_recommended = granularity;
  if (auto checked = config.engine_config_for(0).validate(props); !checked)
    fail("gpumem.engine", checked.error().message());

  const auto& p = config.pressure;
  if (!(p.warning < p.critical))
    fail("gpumem.pressure.critical", "expected a fraction above gpumem.pressure.warning "
                                       + number(p.warning) + ", got " + number(p.critical));
  if (!(p.hysteresis < p.warning))
    fail("gpumem.pressure.hysteresis", "expected a fraction from 0 to below gpumem.pressure.warning "
                                         + number(p.warning) + ", got " + number(p.hysteresis));
}

} // namespace gpumem::actors::detail
