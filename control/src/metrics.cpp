// GET /metrics: the runtime in Prometheus's text format (0.0.4), one family per
// measure with its device and tag labels. Written by hand
// (prometheus_text.hpp): the format is a few lines of text, the values come from one
// scrape of the runtime, and a registry library would add a dependency and a second
// copy of every value without adding anything the scrape needs.
// Sleep, wake and pressure-response seconds are histograms over the runtime's fixed
// bounds (core::duration_buckets), from 1 ms to 30 s.

#include "metrics_scrape.hpp"
#include "prometheus_text.hpp"
#include "routes.hpp"

namespace gpumem::control {

namespace asio = boost::asio;
namespace m = messages;

namespace {

std::string device_label(std::int32_t device) { return std::to_string(device); }

template <class Get>
struct field {
  const char* name;
  const char* help;
  Get get;
};

void tag_families(prometheus_text& out, const scrape& s) {
  using get = double (*)(const m::stat_grid&);
  const field<get> gauges[] = {
    {"gpumem_allocated_bytes", "Bytes of live regions, asleep or not.",
     [](const m::stat_grid& g) { return double(g.allocated.current); }},
    {"gpumem_active_bytes", "Bytes of live regions resident on the device.",
     [](const m::stat_grid& g) { return double(g.active.current); }},
    {"gpumem_reserved_bytes", "Physical bytes mapped for the tag's segments.",
     [](const m::stat_grid& g) { return double(g.reserved.current); }},
    {"gpumem_cached_bytes", "Of the reserved bytes, wholly free segments kept mapped for reuse.",
     [](const m::stat_grid& g) { return double(g.cached.current); }},
  };
  for (const auto& f : gauges) {
    out.family(f.name, "gauge", f.help);
    for (const auto& d : s.stats.devices)
      for (const auto& t : d.tags)
        out.sample(f.name, {{"device", device_label(d.device)}, {"tag", t.tag}}, f.get(t.grid));
  }
  out.family("gpumem_backed_up_bytes", "gauge",
             "Bytes of sleeping regions kept in host memory, to be restored on wake.");
  for (const auto& d : s.stats.devices) {
    auto held = s.backed_up.find(d.device);
    for (const auto& t : d.tags) {
      double bytes = 0;
      if (held != s.backed_up.end())
        if (auto b = held->second.find(t.tag); b != held->second.end())
          bytes = double(b->second);
      out.sample("gpumem_backed_up_bytes", {{"device", device_label(d.device)}, {"tag", t.tag}},
                 bytes);
    }
  }
  const field<get> counters[] = {
    {"gpumem_allocations_total", "Allocations that succeeded.",
     [](const m::stat_grid& g) { return double(g.allocations); }},
    {"gpumem_frees_total", "Regions freed.", [](const m::stat_grid& g) { return double(g.frees); }},
  };
  for (const auto& f : counters) {
    out.family(f.name, "counter", f.help);
    for (const auto& d : s.stats.devices)
      for (const auto& t : d.tags)
        out.sample(f.name, {{"device", device_label(d.device)}, {"tag", t.tag}}, f.get(t.grid));
  }
}

void device_counters(prometheus_text& out, const scrape& s) {
  using get = double (*)(const m::statistics&);
  const field<get> counters[] = {
    {"gpumem_ooms_total", "Allocations that failed for lack of device memory.",
     [](const m::statistics& x) { return double(x.ooms); }},
    {"gpumem_oom_retries_total", "Allocations that succeeded only after the cache was released.",
     [](const m::statistics& x) { return double(x.oom_retries); }},
    {"gpumem_segments_created_total", "Segments made.",
     [](const m::statistics& x) { return double(x.segments_created); }},
    {"gpumem_segments_released_total", "Segments given back.",
     [](const m::statistics& x) { return double(x.segments_released); }},
    {"gpumem_chunks_created_total", "Physical chunks created on the device.",
     [](const m::statistics& x) { return double(x.chunks_created); }},
    {"gpumem_chunks_reused_total", "Cached chunks mapped again instead of created.",
     [](const m::statistics& x) { return double(x.chunks_reused); }},
    {"gpumem_chunks_released_total", "Physical chunks given back to the device.",
     [](const m::statistics& x) { return double(x.chunks_released); }},
    {"gpumem_sleeps_total", "Sleeps completed.",
     [](const m::statistics& x) { return double(x.sleeps); }},
    {"gpumem_wakes_total", "Wakes completed.",
     [](const m::statistics& x) { return double(x.wakes); }},
    {"gpumem_failed_transitions_total", "Sleeps and wakes that failed.",
     [](const m::statistics& x) { return double(x.failed_transitions); }},
    {"gpumem_sleep_backed_up_bytes_total", "Bytes copied to host memory by sleeps.",
     [](const m::statistics& x) { return double(x.bytes_backed_up); }},
    {"gpumem_sleep_discarded_bytes_total", "Live bytes dropped by sleeps.",
     [](const m::statistics& x) { return double(x.bytes_discarded); }},
    {"gpumem_wake_restored_bytes_total", "Bytes copied back to the device by wakes.",
     [](const m::statistics& x) { return double(x.bytes_restored); }},
    {"gpumem_trims_total", "Trims (cached segments returned to the device).",
     [](const m::statistics& x) { return double(x.trims); }},
    {"gpumem_defragmentations_total", "Defragmentations (trims and free tails released).",
     [](const m::statistics& x) { return double(x.defragmentations); }},
    {"gpumem_trimmed_bytes_total", "Bytes trims and defragmentations gave back to the device.",
     [](const m::statistics& x) { return double(x.bytes_trimmed); }},
  };
  for (const auto& f : counters) {
    out.family(f.name, "counter", f.help);
    for (const auto& d : s.stats.devices)
      out.sample(f.name, {{"device", device_label(d.device)}}, f.get(d));
  }
  out.family("gpumem_sleep_duration_seconds", "histogram", "Seconds each sleep took.");
  for (const auto& d : s.stats.devices)
    out.histogram("gpumem_sleep_duration_seconds", {{"device", device_label(d.device)}},
                  d.sleep_durations.upper_bounds, d.sleep_durations.counts, d.sleep_seconds,
                  d.sleeps);
  out.family("gpumem_wake_duration_seconds", "histogram", "Seconds each wake took.");
  for (const auto& d : s.stats.devices)
    out.histogram("gpumem_wake_duration_seconds", {{"device", device_label(d.device)}},
                  d.wake_durations.upper_bounds, d.wake_durations.counts, d.wake_seconds,
                  d.wakes);
}

/// vLLM's vllm:engine_sleep_state, per device: awake, weights_offloaded (something
/// sleeps and bytes wait in host memory) or discard_all (what sleeps was dropped).
const char* sleep_state(const scrape& s, const m::device_status& d) {
  if (d.asleep_tags.empty())
    return "awake";
  auto held = s.backed_up.find(d.device);
  if (held != s.backed_up.end())
    for (const auto& [tag, bytes] : held->second)
      if (bytes > 0)
        return "weights_offloaded";
  return "discard_all";
}

void device_gauges(prometheus_text& out, const scrape& s) {
  out.family("gpumem_device_info", "gauge", "The device's name and backend (always 1).");
  for (const auto& d : s.devices)
    out.sample("gpumem_device_info",
               {{"device", device_label(d.device)}, {"name", d.name}, {"backend", d.backend}}, 1);
  out.family("gpumem_device_memory_total_bytes", "gauge", "The device's memory.");
  for (const auto& d : s.devices)
    out.sample("gpumem_device_memory_total_bytes", {{"device", device_label(d.device)}},
               double(d.total_bytes));
  out.family("gpumem_device_memory_free_bytes", "gauge",
             "The device's free memory (on a GPU, other processes' use included).");
  for (const auto& d : s.devices)
    out.sample("gpumem_device_memory_free_bytes", {{"device", device_label(d.device)}},
               double(d.free_bytes));

  out.family("gpumem_fragmentation_ratio", "gauge",
             "Share of mapped memory no live byte uses: 1 - active / reserved.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_fragmentation_ratio", {{"device", device_label(d.device)}}, d.fragmentation);
  out.family("gpumem_pressure_level", "gauge",
             "The device's memory pressure: 0 normal, 1 warning, 2 critical.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_pressure_level", {{"device", device_label(d.device)}},
               double(static_cast<int>(d.pressure)));
  out.family("gpumem_sleep_state", "gauge",
             "1 for the device's sleep state (awake, weights_offloaded, discard_all), 0 for the others.");
  for (const auto& d : s.status.devices)
    for (const char* state : {"awake", "weights_offloaded", "discard_all"})
      out.sample("gpumem_sleep_state", {{"device", device_label(d.device)}, {"sleep_state", state}},
                 std::string_view(state) == sleep_state(s, d) ? 1 : 0);
  out.family("gpumem_live_regions", "gauge", "Live regions (allocations) on the device.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_live_regions", {{"device", device_label(d.device)}}, double(d.live_regions));

  out.family("gpumem_pressure_responses_total", "counter",
             "Responses to pressure (trim, defragment, offload) that ran to the end.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_pressure_responses_total", {{"device", device_label(d.device)}},
               double(d.pressure_responses));
  out.family("gpumem_offloads_total", "counter", "Tags offloaded to host memory under pressure.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_offloads_total", {{"device", device_label(d.device)}}, double(d.offloads));
  out.family("gpumem_pressure_response_duration_seconds", "histogram",
             "Seconds each pressure response took, from the level change to the memory released.");
  for (const auto& d : s.status.devices)
    out.histogram("gpumem_pressure_response_duration_seconds",
                  {{"device", device_label(d.device)}}, d.response_durations.upper_bounds,
                  d.response_durations.counts, d.total_response_ms / 1000, d.pressure_responses);
  out.family("gpumem_pressure_response_last_seconds", "gauge",
             "The last pressure response: from the level change to the memory released.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_pressure_response_last_seconds", {{"device", device_label(d.device)}},
               d.last_response_ms / 1000);
  out.family("gpumem_pressure_response_max_seconds", "gauge", "The slowest pressure response.");
  for (const auto& d : s.status.devices)
    out.sample("gpumem_pressure_response_max_seconds", {{"device", device_label(d.device)}},
               d.max_response_ms / 1000);

  out.family("gpumem_allocations_routed_total", "counter", "Allocations the balancer routed.");
  out.sample("gpumem_allocations_routed_total", {}, double(s.status.allocations_routed));
  out.family("gpumem_allocations_rejected_total", "counter",
             "Allocations no device could take.");
  out.sample("gpumem_allocations_rejected_total", {}, double(s.status.allocations_rejected));
}

} // namespace

asio::awaitable<reply> metrics_route(service& svc, const request& req) {
  req.params.allow_only({});
  auto scraped = co_await take_scrape(svc.memory);
  if (!scraped)
    co_return failure_reply(scraped.error());
  const auto& s = *scraped;
  prometheus_text out;
  tag_families(out, s);
  device_counters(out, s);
  device_gauges(out, s);
  reply r;
  r.body = out.text();
  r.content_type = prometheus_content_type;
  co_return r;
}

} // namespace gpumem::control
