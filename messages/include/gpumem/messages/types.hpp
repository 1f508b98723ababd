#pragma once
// The protocol's value types. They mirror the engine's vocabulary (gpumem/core) in a
// wire-friendly form: fixed-width integers, enums sent as their underlying integer,
// no std::optional and no maps. Each has inspect() (CAF 0.17's API) and operator==,
// and register_protocol() (register.hpp) names every one of them for the wire.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>

#include "gpumem/messages/errors.hpp"

namespace gpumem::messages {

/// A device_hint that lets the balancer choose the device.
inline constexpr std::int32_t any_device = -1;
/// A pressure subscription's device that means every device the monitor watches.
inline constexpr std::int32_t every_device = -1;

// -- enums (sent as their underlying integer; to_string for logs and deep_to_string)

/// How an allocation gets its memory (core::strategy).
enum class strategy : std::uint8_t {
  pooled,      // best fit in the tag's pool
  first_fit,   // the first block of the smallest size class that surely fits
  dedicated,   // its own physical chunks, released on free
  configured,  // the allocator's configured strategy for the tag (the default)
};

/// A device's engine as a whole (core::engine_state); asleep: at least one tag sleeps.
enum class device_state : std::uint8_t { awake, falling_asleep, asleep, waking };

enum class transition_kind : std::uint8_t { sleep, wake };

/// How close a device is to running out of memory.
enum class pressure_level : std::uint8_t { normal, warning, critical };

inline const char* to_string(strategy x) noexcept {
  switch (x) {
    case strategy::pooled: return "pooled";
    case strategy::first_fit: return "first_fit";
    case strategy::dedicated: return "dedicated";
    case strategy::configured: return "configured";
  }
  return "unknown";
}

inline const char* to_string(device_state x) noexcept {
  switch (x) {
    case device_state::awake: return "awake";
    case device_state::falling_asleep: return "falling_asleep";
    case device_state::asleep: return "asleep";
    case device_state::waking: return "waking";
  }
  return "unknown";
}

inline const char* to_string(transition_kind x) noexcept {
  return x == transition_kind::sleep ? "sleep" : x == transition_kind::wake ? "wake" : "unknown";
}

inline const char* to_string(pressure_level x) noexcept {
  switch (x) {
    case pressure_level::normal: return "normal";
    case pressure_level::warning: return "warning";
    case pressure_level::critical: return "critical";
  }
  return "unknown";
}

// -- floating-point fields --------------------------------------------------------

/// CAF 0.17.6 writes a double by halving it until it is below 2, which never ends for
/// an infinity, and reads the largest exponent as one: a peer's bytes could thus make
/// the next serialization of the value hang. The protocol's doubles are finite at
/// both ends: inspect() refuses an infinity or NaN when a value is written or read.
inline caf::error finite_fields(const char* type,
                                std::initializer_list<std::pair<const char*, double>> fields) {
  for (const auto& [name, value] : fields)
    if (!std::isfinite(value))
      return make_error(gpumem_errc::invalid_config, std::string(type) + "." + name
                                                       + " is not a finite number");
  return caf::none;
}

// -- allocation ------------------------------------------------------------------

/// One live region, as its owner needs it to use and later free it.
struct region_handle {
  std::int32_t device = 0;
  std::uint64_t region = 0;     // the engine's region id, never reused on that device
  std::uint64_t address = 0;    // the region's first byte (device virtual address)
  std::uint64_t size = 0;       // what the region occupies (rounded)
  std::uint64_t requested = 0;  // what was asked for
  std::string tag;
  bool operator==(const region_handle&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, region_handle& x) {
  return f(caf::meta::type_name("gpumem::region_handle"), x.device, x.region, x.address,
           x.size, x.requested, x.tag);
}

struct allocation_request {
  std::uint64_t size = 0;
  std::string tag{"default"};
  strategy how = strategy::configured;
  std::uint64_t alignment = 0;             // 0: the engine's default; else a power of two
  std::int32_t device_hint = any_device;   // balancer: preferred device; -1: any
  bool operator==(const allocation_request&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, allocation_request& x) {
  return f(caf::meta::type_name("gpumem::allocation_request"), x.size, x.tag, x.how,
           x.alignment, x.device_hint);
}

/// Several allocations that succeed together or not at all.
struct batch_allocation_request {
  std::vector<allocation_request> requests;
  bool operator==(const batch_allocation_request&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_allocation_request& x) {
  return f(caf::meta::type_name("gpumem::batch_allocation_request"), x.requests);
}

/// The regions of a batch, in the order of its requests.
struct batch_allocation_response {
  std::vector<region_handle> regions;
  bool operator==(const batch_allocation_response&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_allocation_response& x) {
  return f(caf::meta::type_name("gpumem::batch_allocation_response"), x.regions);
}

/// Several regions to free at once. A device frees all of its part or none of it.
struct batch_deallocation_request {
  std::vector<region_handle> regions;
  bool operator==(const batch_deallocation_request&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_deallocation_request& x) {
  return f(caf::meta::type_name("gpumem::batch_deallocation_request"), x.regions);
}

// -- sleep and wake --------------------------------------------------------------

/// What a sleep keeps (core::sleep_policy). Level 1 backs up `weights` and discards the
/// rest; level 2 discards everything; level 0 backs up exactly `backup_tags`. `tags`
/// limits the sleep to some tags (empty: every tag). Other levels: invalid_config.
struct sleep_policy {
  std::int32_t level = 1;
  std::vector<std::string> backup_tags;  // read at level 0 only
  std::vector<std::string> tags;

  static sleep_policy at_level(std::int32_t level, std::vector<std::string> tags = {}) {
    return {level, {}, std::move(tags)};
  }
  static sleep_policy backing_up(std::vector<std::string> backup_tags,
                                 std::vector<std::string> tags = {}) {
    return {0, std::move(backup_tags), std::move(tags)};
  }
  bool operator==(const sleep_policy&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sleep_policy& x) {
  return f(caf::meta::type_name("gpumem::sleep_policy"), x.level, x.backup_tags, x.tags);
}

/// What one sleep or wake did on one device (core::transition_report).
struct transition_report {
  std::int32_t device = 0;
  transition_kind kind = transition_kind::sleep;
  std::vector<std::string> tags;
  std::uint64_t bytes_backed_up = 0;  // sleep: device -> host
  std::uint64_t bytes_discarded = 0;  // sleep: live bytes dropped
  std::uint64_t bytes_released = 0;   // sleep: physical memory given back
  std::uint64_t bytes_mapped = 0;     // wake: physical memory mapped again
  std::uint64_t bytes_restored = 0;   // wake: host -> device
  double seconds = 0;
  double copy_seconds = 0;            // the part spent waiting for copies
  bool operator==(const transition_report&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transition_report& x) {
  auto finite = [&x] {
    return finite_fields("transition_report",
                         {{"seconds", x.seconds}, {"copy_seconds", x.copy_seconds}});
  };
  return f(caf::meta::type_name("gpumem::transition_report"), caf::meta::save_callback(finite),
           x.device, x.kind, x.tags, x.bytes_backed_up, x.bytes_discarded, x.bytes_released,
           x.bytes_mapped, x.bytes_restored, x.seconds, x.copy_seconds,
           caf::meta::load_callback(finite));
}

// -- maintenance -----------------------------------------------------------------

/// core::trim_report: wholly free segments returned to the device.
struct trim_report {
  std::int32_t device = 0;
  std::uint64_t bytes_released = 0;
  std::uint64_t segments_released = 0;
  bool operator==(const trim_report&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trim_report& x) {
  return f(caf::meta::type_name("gpumem::trim_report"), x.device, x.bytes_released,
           x.segments_released);
}

/// core::defragment_report: trim plus free tails of live segments, nothing moved.
struct defragment_report {
  std::int32_t device = 0;
  std::uint64_t bytes_released_cached = 0;
  std::uint64_t bytes_released_tails = 0;
  std::uint64_t segments_released = 0;
  double fragmentation_before = 0;
  double fragmentation_after = 0;
  bool operator==(const defragment_report&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, defragment_report& x) {
  auto finite = [&x] {
    return finite_fields("defragment_report", {{"fragmentation_before", x.fragmentation_before},
                                               {"fragmentation_after", x.fragmentation_after}});
  };
  return f(caf::meta::type_name("gpumem::defragment_report"), caf::meta::save_callback(finite),
           x.device, x.bytes_released_cached, x.bytes_released_tails, x.segments_released,
           x.fragmentation_before, x.fragmentation_after, caf::meta::load_callback(finite));
}

// -- statistics (core::engine_statistics, flattened) -----------------------------

/// One kind of bytes: current and peak values, running totals added and taken away.
struct stat {
  std::int64_t current = 0;
  std::int64_t peak = 0;
  std::int64_t allocated = 0;
  std::int64_t freed = 0;
  bool operator==(const stat&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stat& x) {
  return f(caf::meta::type_name("gpumem::stat"), x.current, x.peak, x.allocated, x.freed);
}

/// One tag's bytes, or a device's in total (core::stat_grid).
struct stat_grid {
  stat allocated;  // bytes of live regions, asleep or not
  stat requested;  // what callers asked for of those regions
  stat active;     // bytes of live regions resident on the device
  stat reserved;   // physical bytes mapped (segments)
  stat cached;     // of reserved, wholly free segments kept for reuse
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  bool operator==(const stat_grid&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stat_grid& x) {
  return f(caf::meta::type_name("gpumem::stat_grid"), x.allocated, x.requested, x.active,
           x.reserved, x.cached, x.allocations, x.frees);
}

/// A tag's grid; a vector of these replaces the engine's map.
struct tag_stat_grid {
  std::string tag;
  stat_grid grid;
  bool operator==(const tag_stat_grid&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tag_stat_grid& x) {
  return f(caf::meta::type_name("gpumem::tag_stat_grid"), x.tag, x.grid);
}

/// Durations counted by bucket (core::duration_buckets): counts[i] are those above
/// upper_bounds[i - 1] seconds and at most upper_bounds[i]; the last count, those above
/// every bound. Their sum and count are in the fields beside it. Empty: none kept.
struct duration_buckets {
  std::vector<double> upper_bounds;   // increasing, finite
  std::vector<std::uint64_t> counts;  // upper_bounds.size() + 1, or empty with them
  bool operator==(const duration_buckets&) const = default;

  /// Adds `x`'s counts to these (bucket by bucket; `x`'s bounds where these are empty).
  /// Bounds that differ are an error: the sum would mean nothing.
  caf::error add(const duration_buckets& x) {
    if (x.counts.empty())
      return caf::none;
    if (counts.empty()) {
      *this = x;
      return caf::none;
    }
    if (x.upper_bounds != upper_bounds)
      return make_error(gpumem_errc::invalid_config,
                        "duration buckets with different bounds cannot be added");
    for (std::size_t i = 0; i < counts.size(); ++i)
      counts[i] += x.counts[i];
    return caf::none;
  }

  /// Why these cannot be a histogram's buckets; none when they can.
  caf::error check() const {
    if (upper_bounds.empty() && counts.empty())
      return caf::none;
    if (counts.size() != upper_bounds.size() + 1)
      return make_error(gpumem_errc::invalid_config,
                        "duration_buckets: " + std::to_string(counts.size()) + " counts for "
                          + std::to_string(upper_bounds.size()) + " bounds (needs bounds + 1)");
    for (std::size_t i = 0; i < upper_bounds.size(); ++i)
      if (!std::isfinite(upper_bounds[i]) || (i > 0 && upper_bounds[i] <= upper_bounds[i - 1]))
        return make_error(gpumem_errc::invalid_config,
                          "duration_buckets: bounds must be finite and increasing");
    return caf::none;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, duration_buckets& x) {
  auto valid = [&x] { return x.check(); };
  return f(caf::meta::type_name("gpumem::duration_buckets"), caf::meta::save_callback(valid),
           x.upper_bounds, x.counts, caf::meta::load_callback(valid));
}

/// One device's statistics (device -1: a sum over devices).
struct statistics {
  std::int32_t device = 0;
  stat_grid total;
  std::vector<tag_stat_grid> tags;  // in tag name order
  std::uint64_t ooms = 0;
  std::uint64_t oom_retries = 0;
  std::uint64_t segments_created = 0;
  std::uint64_t segments_released = 0;
  std::uint64_t chunks_created = 0;
  std::uint64_t chunks_reused = 0;
  std::uint64_t chunks_released = 0;
  std::uint64_t sleeps = 0;
  std::uint64_t wakes = 0;
  std::uint64_t failed_transitions = 0;
  std::uint64_t bytes_backed_up = 0;
  std::uint64_t bytes_restored = 0;
  std::uint64_t bytes_discarded = 0;
  double sleep_seconds = 0;
  double wake_seconds = 0;
  std::uint64_t trims = 0;
  std::uint64_t defragmentations = 0;
  std::uint64_t bytes_trimmed = 0;
  duration_buckets sleep_durations;  // their sum and count: sleep_seconds and sleeps
  duration_buckets wake_durations;   // and wake_seconds and wakes
  bool operator==(const statistics&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, statistics& x) {
  auto finite = [&x] {
    return finite_fields("statistics",
                         {{"sleep_seconds", x.sleep_seconds}, {"wake_seconds", x.wake_seconds}});
  };
  return f(caf::meta::type_name("gpumem::statistics"), caf::meta::save_callback(finite),
           x.device, x.total, x.tags, x.ooms, x.oom_retries, x.segments_created,
           x.segments_released, x.chunks_created, x.chunks_reused, x.chunks_released, x.sleeps,
           x.wakes, x.failed_transitions, x.bytes_backed_up, x.bytes_restored,
           x.bytes_discarded, x.sleep_seconds, x.wake_seconds, x.trims, x.defragmentations,
           x.bytes_trimmed, x.sleep_durations, x.wake_durations,
           caf::meta::load_callback(finite));
}

/// The balancer's view: every device's statistics and their sum (device -1). The
/// sum's peaks are sums of peaks, an upper bound of the joint peak.
struct cluster_statistics {
  statistics total;
  std::vector<statistics> devices;  // in device order
  bool operator==(const cluster_statistics&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_statistics& x) {
  return f(caf::meta::type_name("gpumem::cluster_statistics"), x.total, x.devices);
}

// -- snapshot --------------------------------------------------------------------

/// A device's memory snapshot as the engine's documented JSON (docs/snapshot.md);
/// core::memory_snapshot::from_json reads it back.
struct memory_snapshot {
  std::int32_t device = 0;
  std::string json;
  bool operator==(const memory_snapshot&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, memory_snapshot& x) {
  return f(caf::meta::type_name("gpumem::memory_snapshot"), x.device, x.json);
}

// -- devices and status ----------------------------------------------------------

/// What a device is and how much of it is free.
struct device_info {
  std::int32_t device = 0;
  std::string name;         // the driver's device name
  std::string backend;      // "cuda" or "host"
  std::uint64_t total_bytes = 0;
  std::uint64_t free_bytes = 0;
  std::uint64_t granularity = 0;  // minimum mapping granularity
  device_state state = device_state::awake;
  bool operator==(const device_info&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, device_info& x) {
  return f(caf::meta::type_name("gpumem::device_info"), x.device, x.name, x.backend,
           x.total_bytes, x.free_bytes, x.granularity, x.state);
}

/// A change of a device's pressure level (or, in a reply, its current level).
struct pressure_event {
  std::int32_t device = 0;
  std::uint64_t available_bytes = 0;
  std::uint64_t total_bytes = 0;
  pressure_level level = pressure_level::normal;
  pressure_level previous = pressure_level::normal;
  std::int64_t time_ns = 0;  // system clock, nanoseconds since the epoch
  bool operator==(const pressure_event&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pressure_event& x) {
  return f(caf::meta::type_name("gpumem::pressure_event"), x.device, x.available_bytes,
           x.total_bytes, x.level, x.previous, x.time_ns);
}

/// A device allocator's state of the moment.
struct device_status {
  std::int32_t device = 0;
  device_state state = device_state::awake;
  pressure_level pressure = pressure_level::normal;  // the last level it was told
  std::vector<std::string> asleep_tags;
  std::uint64_t live_regions = 0;
  std::uint64_t physical_bytes = 0;    // mapped or cached on the device
  std::uint64_t pending_requests = 0;  // waiting for a transition to finish
  double fragmentation = 0;
  // Pressure responses: a trim at warning, a defragment (and an offload) at critical.
  std::vector<std::string> offloaded_tags;  // of asleep_tags, those pressure offloaded
  std::uint64_t pressure_responses = 0;     // responses that ran to the end
  double last_response_ms = 0;  // the last one: level change -> memory released
  double max_response_ms = 0;   // the slowest so far
  std::uint64_t last_response_bytes = 0;  // what the last one released
  std::uint64_t offloads = 0;         // offload sleeps finished
  std::uint64_t offload_wakes = 0;    // wakes of offloaded tags finished
  std::uint64_t bytes_offloaded = 0;  // backed up to host by offloads, in all
  // Why offloaded_tags are not awake yet (empty when none are offloaded): pressure not
  // normal, or the last wake's failure and when it is tried again.
  std::string offload_wait_reason;
  std::uint64_t offload_wake_retries = 0;  // wakes of offloaded tags tried again
  std::uint64_t prepared_transaction = 0;  // a collective transition held (0: none)
  // The sticky CUDA error that lost the device (empty: healthy). Once set, the
  // device is asked nothing more; its operations fail naming it (restart the process).
  std::string lost;
  double total_response_ms = 0;         // of every pressure response
  duration_buckets response_durations;  // their sum and count: total_response_ms and
                                        // pressure_responses
  bool operator==(const device_status&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, device_status& x) {
  auto finite = [&x] {
    return finite_fields("device_status", {{"fragmentation", x.fragmentation},
                                           {"last_response_ms", x.last_response_ms},
                                           {"max_response_ms", x.max_response_ms},
                                           {"total_response_ms", x.total_response_ms}});
  };
  return f(caf::meta::type_name("gpumem::device_status"), caf::meta::save_callback(finite),
           x.device, x.state, x.pressure, x.asleep_tags, x.live_regions, x.physical_bytes,
           x.pending_requests, x.fragmentation, x.offloaded_tags, x.pressure_responses,
           x.last_response_ms, x.max_response_ms, x.last_response_bytes, x.offloads,
           x.offload_wakes, x.bytes_offloaded, x.offload_wait_reason, x.offload_wake_retries,
           x.prepared_transaction, x.lost, x.total_response_ms, x.response_durations,
           caf::meta::load_callback(finite));
}

/// The balancer's state: its routing and every device it routes to.
struct balancer_status {
  std::string routing;                  // the routing policy's name
  std::vector<device_status> devices;   // in device order
  std::uint64_t allocations_routed = 0;
  std::uint64_t allocations_rejected = 0;  // no device could take them
  bool operator==(const balancer_status&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, balancer_status& x) {
  return f(caf::meta::type_name("gpumem::balancer_status"), x.routing, x.devices,
           x.allocations_routed, x.allocations_rejected);
}

/// The pressure monitor's state.
struct pressure_monitor_status {
  std::vector<pressure_event> levels;  // the latest reading per device
  std::uint64_t subscribers = 0;
  std::int64_t interval_ns = 0;        // between polls
  std::uint64_t events_sent = 0;
  bool operator==(const pressure_monitor_status&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pressure_monitor_status& x) {
  return f(caf::meta::type_name("gpumem::pressure_monitor_status"), x.levels,
           x.subscribers, x.interval_ns, x.events_sent);
}

/// A node: a process that serves one runtime over the network (gpumem node).
struct node_info {
  std::string node_id;  // CAF's id of the node's actor system, unique per process
  std::string host;     // the machine's host name
  std::int32_t pid = 0;
  std::vector<device_info> devices;  // in device order
  /// The runtime's own deadlines; a remote client's are a quarter beyond them.
  std::int64_t request_timeout_ms = 0;
  std::int64_t transition_timeout_ms = 0;
  bool operator==(const node_info&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_info& x) {
  return f(caf::meta::type_name("gpumem::node_info"), x.node_id, x.host, x.pid, x.devices,
           x.request_timeout_ms, x.transition_timeout_ms);
}

// -- cluster ---------------------------------------------------------------------
// A cluster (cluster_actor) watches nodes and names each by the "host:port" it
// reaches it at.

/// How the cluster last found a node.
enum class node_health : std::uint8_t {
  joining,  // named, not yet answered (or reconnecting after it was lost)
  up,       // answered its last heartbeat in time
  lost,     // its link went down, or a heartbeat went unanswered past the deadline
};

inline const char* to_string(node_health x) noexcept {
  switch (x) {
    case node_health::joining: return "joining";
    case node_health::up: return "up";
    case node_health::lost: return "lost";
  }
  return "unknown";
}

/// One node as the cluster sees it.
struct cluster_node {
  std::string address;  // "host:port": its name in the cluster
  node_health health = node_health::joining;
  node_info info;       // as it answered its last heartbeat (empty until the first)
  std::string cause;    // why it is not up (empty when up)
  std::int64_t since_seen_ms = -1;  // since its last answer (-1: never answered)
  bool operator==(const cluster_node&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_node& x) {
  return f(caf::meta::type_name("gpumem::cluster_node"), x.address, x.health, x.info, x.cause,
           x.since_seen_ms);
}

/// Every node the cluster knows, in the order it learned of them.
struct cluster_status {
  std::vector<cluster_node> nodes;
  std::int64_t heartbeat_ms = 0;  // how often each node is asked
  std::int64_t deadline_ms = 0;   // how long an answer may take before the node is lost
  bool operator==(const cluster_status&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cluster_status& x) {
  return f(caf::meta::type_name("gpumem::cluster_status"), x.nodes, x.heartbeat_ms,
           x.deadline_ms);
}

/// One node's statistics (its balancer's answer).
struct node_statistics {
  std::string node;
  cluster_statistics devices;
  bool operator==(const node_statistics&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_statistics& x) {
  return f(caf::meta::type_name("gpumem::node_statistics"), x.node, x.devices);
}

/// Every node's statistics that are up, and their sum.
struct nodes_statistics {
  statistics total;
  std::vector<node_statistics> nodes;
  bool operator==(const nodes_statistics&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, nodes_statistics& x) {
  return f(caf::meta::type_name("gpumem::nodes_statistics"), x.total, x.nodes);
}

/// An allocation placed by the cluster: on `node`, or (empty) on the node up with the
/// most free memory on one device.
struct placement_request {
  allocation_request request;
  std::string node;
  bool operator==(const placement_request&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, placement_request& x) {
  return f(caf::meta::type_name("gpumem::placement_request"), x.request, x.node);
}

/// Where a placed allocation went: the node, and the region as that node answered.
struct placed_region {
  std::string node;
  region_handle region;
  bool operator==(const placed_region&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, placed_region& x) {
  return f(caf::meta::type_name("gpumem::placed_region"), x.node, x.region);
}

/// A collective transition over these nodes (empty: every node the cluster knows, all
/// of which must be up): a sleep with `policy`, or a wake of `tags` (empty: all).
struct collective_request {
  transition_kind kind = transition_kind::sleep;
  sleep_policy policy;            // sleep
  std::vector<std::string> tags;  // wake
  std::vector<std::string> nodes;
  bool operator==(const collective_request&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, collective_request& x) {
  return f(caf::meta::type_name("gpumem::collective_request"), x.kind, x.policy, x.tags,
           x.nodes);
}

/// One node's part of a collective transition: a report per device, in device order.
struct node_transition {
  std::string node;
  std::vector<transition_report> devices;
  bool operator==(const node_transition&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_transition& x) {
  return f(caf::meta::type_name("gpumem::node_transition"), x.node, x.devices);
}

/// A node's pressure event, as the cluster forwards it to its subscribers.
struct node_pressure_event {
  std::string node;
  pressure_event event;
  bool operator==(const node_pressure_event&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_pressure_event& x) {
  return f(caf::meta::type_name("gpumem::node_pressure_event"), x.node, x.event);
}

} // namespace gpumem::messages
