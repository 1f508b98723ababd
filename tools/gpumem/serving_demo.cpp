// The serving day, step by step: what `gpumem demo` does to the runtime and what it
// expects back. How it checks, measures and reports lives in demo/.

#include "serving_demo.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "demo/allocator_probe.hpp"
#include "demo/burst_client.hpp"
#include "demo/checks.hpp"
#include "demo/outside_memory.hpp"
#include "demo/pressure_log.hpp"
#include "demo/report.hpp"
#include "demo/weight_io.hpp"
#include "gpumem/actors/runtime.hpp"
#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/messages/all.hpp"
#include "runtime_options.hpp"
#include "step_timing.hpp"

namespace gpumem::tool {

namespace {

using namespace gpumem::messages;
using namespace gpumem::tool::demo;
using namespace std::chrono_literals;

// -- the steps -------------------------------------------------------------------------

/// (1) Weights: allocated through the balancer, device by device in turn, filled.
std::vector<weight_tensor> load_weights(demo_context& cx, const serving_options& o, weight_io& io) {
  std::vector<weight_tensor> weights;
  auto devices = static_cast<int>(cx.rt.devices().size());
  spdlog::info("step 1: loading {} weight tensors of {} over {} device(s)", o.weight_tensors,
               mib(o.weight_size), devices);
  auto start = clock_type::now();
  for (int i = 0; i < o.weight_tensors; ++i) {
    allocation_request request;
    request.size = o.weight_size;
    request.tag = "weights";
    request.device_hint = i % devices;
    auto handle = cx.ask<region_handle>(cx.rt.balancer(), "allocate weights", allocate_atom::value,
                                        request);
    if (!handle)
      continue;
    if (handle->device != request.device_hint)
      cx.fail("weights " + std::to_string(i) + " landed on device " + std::to_string(handle->device)
              + ", not the hinted " + std::to_string(request.device_hint));
    weights.push_back({*handle, 0x5eedull + static_cast<std::uint64_t>(i) * 7919, 0});
  }
  double alloc_s = seconds_since(start);
  std::uint64_t bytes = 0;
  for (const auto& w : weights)
    bytes += w.handle.requested;
  cx.report.push_back({"1 allocate weights", alloc_s, 0,
                       std::to_string(weights.size()) + " tensors, " + mib(bytes)});

  start = clock_type::now();
  for (std::size_t i = 0; i < weights.size(); ++i) {
    auto& w = weights[i];
    auto sum = io.fill(w);
    if (!sum) {
      cx.fail("could not write weights region " + std::to_string(w.handle.region));
      continue;
    }
    w.sum = *sum;
    spdlog::info("  tensor {} (region {} on device {}) at {:#x}: {} written, checksum {:016x}", i,
                 w.handle.region, w.handle.device, w.handle.address, mib(w.handle.requested), w.sum);
  }
  double fill_s = seconds_since(start);
  cx.report.push_back({"1 write weights", fill_s, bytes,
                       io.direct() ? "through the pointer" : "pinned buffer + copies"});
  spdlog::info("step 1: {} of weights loaded in {:.1f} ms ({:.2f} GiB/s written)", mib(bytes),
               (alloc_s + fill_s) * 1e3, gib_per_second(bytes, fill_s));
  return weights;
}

/// (2) A burst of concurrent clients allocating and freeing KV-cache blocks.
void serve_burst(demo_context& cx, const serving_options& o) {
  spdlog::info("step 2: {} clients, {} rounds each of {} KV-cache blocks of {} (allocate, then free)",
               o.clients, o.rounds, o.blocks, mib(o.kv_block));
  auto totals = std::make_shared<burst_totals>();
  caf::scoped_actor self{cx.sys};
  auto start = clock_type::now();
  for (int i = 0; i < o.clients; ++i) {
    auto st = std::make_shared<client_state>();
    st->balancer = cx.rt.balancer();
    st->report_to = caf::actor{self};
    st->totals = totals;
    st->timeout = cx.timeout;
    st->block_size = o.kv_block;
    st->rounds_left = o.rounds;
    st->blocks = o.blocks;
    cx.sys.spawn(burst_client, st);
  }
  int reported = 0;
  for (int i = 0; i < o.clients; ++i) {
    bool timed_out = false;
    self->receive([&](std::int32_t) { ++reported; },
                  caf::after(cx.timeout) >> [&] { timed_out = true; });
    if (timed_out)
      break;
  }
  double s = seconds_since(start);
  if (reported != o.clients)
    cx.fail(std::to_string(o.clients - reported) + " client(s) did not finish in time");

  auto b = summarize(*totals);
  spdlog::info("step 2: {} requests in {:.1f} ms ({:.0f} requests/s), {} error(s); allocations {}",
               b.requests, s * 1e3, static_cast<double>(b.requests) / s, b.errors, b.spread);
  spdlog::info("step 2: latency mean {:.0f} us, p50 {:.0f} us, p99 {:.0f} us, max {:.0f} us",
               b.mean_us, b.p50_us, b.p99_us, b.max_us);
  auto expected = static_cast<std::uint64_t>(o.clients) * o.rounds * o.blocks * 2;
  if (b.errors > 0)
    cx.fail(std::to_string(b.errors) + " burst request(s) failed; first: " + b.first_error);
  if (b.requests != expected)
    cx.fail("the burst answered " + std::to_string(b.requests) + " requests, expected "
            + std::to_string(expected));
  char note[160];
  std::snprintf(note, sizeof note, "%llu requests, %llu errors, p50 %.0f us, p99 %.0f us",
                static_cast<unsigned long long>(b.requests),
                static_cast<unsigned long long>(b.errors), b.p50_us, b.p99_us);
  cx.report.push_back({"2 serve KV burst", s, 0, note});
}

/// KV cache held on device 0 through the pressure episode: what critical offloads to
/// host and normal brings back, checked byte for byte.
std::vector<weight_tensor> hold_kv_cache(demo_context& cx, weight_io& io, std::size_t block,
                                         int blocks) {
  std::vector<weight_tensor> kv;
  for (int i = 0; i < blocks; ++i) {
    allocation_request request;
    request.size = block;
    request.tag = "kv_cache";
    request.device_hint = 0;
    auto h = cx.ask<region_handle>(cx.rt.balancer(), "allocate kv_cache", allocate_atom::value,
                                   request);
    if (!h)
      break;
    weight_tensor t{*h, 0x6b76 + static_cast<std::uint64_t>(i), 0};
    if (auto sum = io.fill(t))
      t.sum = *sum;
    else
      cx.fail("could not write the kv_cache block at " + std::to_string(h->address));
    kv.push_back(t);
  }
  return kv;
}

/// (3) Device 0 under outside pressure: warning, critical, and back to normal.
void pressure_episode(demo_context& cx, event_log& log, weight_io& io,
                      const serving_options& o) {
  auto& backend = cx.rt.backend();
  const auto& p = cx.rt.config().pressure;            // the monitor's period and thresholds
  const auto& r = cx.rt.config().allocator.pressure;  // the allocators' responses
  auto granularity = static_cast<std::size_t>(cx.rt.devices()[0].granularity);
  // Generous: a loaded machine is slow to react, and a wait ends as soon as it is done.
  auto limit = std::max<std::chrono::milliseconds>(
    60000ms, std::chrono::duration_cast<std::chrono::milliseconds>(p.period * 20));
  auto kv = hold_kv_cache(cx, io, o.weight_size, 2);
  std::uint64_t kv_bytes = 0;
  for (const auto& t : kv)
    kv_bytes += t.handle.requested;
  auto status_before = status_of(cx, 0);
  auto before = counters_of(cx, 0);
  spdlog::info("step 3: {} of kv_cache held on device 0 ({} block(s), written)", mib(kv_bytes),
               kv.size());
  spdlog::info("step 3: device 0 at {:.1f}% used ({} mapped by its allocator, {} of it cached); "
               "thresholds warning {:.0f}%, critical {:.0f}%",
               used_fraction(backend, 0) * 100, mib(before.reserved), mib(before.cached),
               p.warning * 100, p.critical * 100);
  auto start = clock_type::now();
  auto events_before = log.size();
  std::vector<cuda::chunk_handle> taken;

  // Past warning first: the allocator trims its cache.
  double warning_target = std::min(p.warning + 0.04, (p.warning + p.critical) / 2);
  auto from = log.size();
  auto bytes = take_until(backend, 0, warning_target, granularity, taken);
  spdlog::info("step 3: an outside process takes {} on device 0 directly from the backend: {:.1f}% used",
               mib(bytes), used_fraction(backend, 0) * 100);
  if (!log.wait_for(0, pressure_level::warning, from, limit))
    cx.fail("no warning event for device 0 within " + std::to_string(limit.count()) + " ms");
  if (r.trim_at_warning && status_before &&
      !wait_status(cx, 0, limit, [&](const device_status& s) {
        return s.pressure_responses > status_before->pressure_responses;
      }))
    cx.fail("device 0's allocator did not respond to warning within "
            + std::to_string(limit.count()) + " ms");
  auto after_warning = counters_of(cx, 0);
  spdlog::info("step 3: device 0's allocator trimmed {} ({} trim(s)); now {:.1f}% used",
               mib(after_warning.bytes_trimmed - before.bytes_trimmed),
               after_warning.trims - before.trims, used_fraction(backend, 0) * 100);

  // Then past critical: the allocator defragments.
  from = log.size();
  double critical_target = std::min(1.0, p.critical + (1.0 - p.critical) / 2);
  auto more = take_until(backend, 0, critical_target, granularity, taken);
  bytes += more;
  spdlog::info("step 3: it takes {} more: {:.1f}% used", mib(more), used_fraction(backend, 0) * 100);
  if (!log.wait_for(0, pressure_level::critical, from, limit))
    cx.fail("no critical event for device 0 within " + std::to_string(limit.count()) + " ms");
  // At critical the allocator defragments first (an offload, if any, comes after).
  auto reacted = wait_until(
    limit, [&] { return std::optional{counters_of(cx, 0)}; },
    [&](const allocator_counters& c) {
      return c.defragmentations > after_warning.defragmentations;
    });
  auto after_critical = reacted ? *reacted : counters_of(cx, 0);
  spdlog::info("step 3: device 0's allocator: {} defragmentation(s), {} trim(s), {} trimmed in all",
               after_critical.defragmentations - before.defragmentations,
               after_critical.trims - before.trims,
               mib(after_critical.bytes_trimmed - before.bytes_trimmed));
  if ((r.trim_at_warning || r.offload_at_critical) && after_critical.trims == before.trims
      && after_critical.defragmentations == before.defragmentations)
    cx.fail("device 0's allocator did not respond to pressure (no trim, no defragmentation)");
  bool offloadable = r.offload_at_critical && !kv.empty() &&
                     std::find(r.offloadable_tags.begin(), r.offloadable_tags.end(),
                               "kv_cache") != r.offloadable_tags.end();
  std::string offload_note;
  if (offloadable && status_before) {
    auto offloaded = wait_status(cx, 0, limit, [&](const device_status& s) {
      return s.offloads > status_before->offloads && s.offloaded_tags.size() > 0;
    });
    if (!offloaded) {
      cx.fail("device 0's allocator did not offload kv_cache at critical");
    } else {
      spdlog::info("step 3: device 0's allocator offloaded {} of {} to host, {:.1f} ms from the "
                   "level change to the memory released; now {:.1f}% used",
                   mib(offloaded->bytes_offloaded - status_before->bytes_offloaded),
                   offloaded->offloaded_tags.front(), offloaded->last_response_ms,
                   used_fraction(backend, 0) * 100);
      char note[96];
      std::snprintf(note, sizeof note, ", offloaded %s in %.1f ms",
                    mib(offloaded->bytes_offloaded - status_before->bytes_offloaded).c_str(),
                    offloaded->last_response_ms);
      offload_note = note;
    }
  }

  // The outside memory goes back: normal again.
  from = log.size();
  spdlog::info("step 3: the outside process releases its {} chunk(s)", taken.size());
  give_back(backend, taken);
  spdlog::info("step 3: released: {:.1f}% used", used_fraction(backend, 0) * 100);
  if (!log.wait_for(0, pressure_level::normal, from, limit))
    cx.fail("device 0 did not return to normal within " + std::to_string(limit.count()) + " ms");
  if (offloadable && status_before && !offload_note.empty()) {
    if (r.wake_on_normal) {
      auto woke = wait_status(cx, 0, limit, [&](const device_status& s) {
        return s.offload_wakes > status_before->offload_wakes && s.offloaded_tags.empty();
      });
      if (!woke)
        cx.fail("device 0's allocator did not wake the offloaded kv_cache at normal");
    }
    std::size_t intact = 0;
    for (const auto& t : kv)
      if (auto sum = io.read(t); sum && *sum == t.sum)
        ++intact;
    spdlog::info("step 3: kv_cache woke at normal; {} of {} block(s) intact at their addresses",
                 intact, kv.size());
    if (intact != kv.size())
      cx.fail(std::to_string(kv.size() - intact) + " kv_cache block(s) changed across the offload");
  }
  for (const auto& t : kv)
    (void)cx.ask<ok_atom>(cx.rt.balancer(), "free kv_cache", deallocate_atom::value, t.handle);
  double s = seconds_since(start);
  auto events = log.size() - events_before;
  spdlog::info("step 3: back to normal; {} pressure event(s) in {:.1f} ms", events, s * 1e3);
  cx.report.push_back({"3 pressure on device 0", s, 0,
                       std::to_string(events) + " events, outside " + mib(bytes) + ", trimmed "
                         + mib(after_critical.bytes_trimmed - before.bytes_trimmed)
                         + offload_note});
}

/// (4) The RL cycle: sleep, a trainer borrows the memory, wake, verify.
void rl_cycle(demo_context& cx, std::vector<weight_tensor>& weights, weight_io& io, event_log& log,
              const serving_options& o) {
  auto& backend = cx.rt.backend();
  auto devices = static_cast<int>(cx.rt.devices().size());
  auto events_before = log.size();
  // Some requests are in flight when the trainer's turn comes: their KV cache is dropped.
  std::vector<region_handle> kv;
  for (int i = 0; i < 8 * devices; ++i) {
    allocation_request request;
    request.size = o.kv_block;
    request.tag = "kv_cache";
    request.device_hint = i % devices;
    if (auto h = cx.ask<region_handle>(cx.rt.balancer(), "allocate kv_cache", allocate_atom::value,
                                       request))
      kv.push_back(*h);
  }
  spdlog::info("step 4: RL cycle; {} KV-cache blocks live; sleep level 1 (weights backed up, "
               "kv_cache discarded)", kv.size());

  auto start = clock_type::now();
  auto slept = cx.ask<std::vector<transition_report>>(cx.rt.balancer(), "sleep_all",
                                                      sleep_all_atom::value, sleep_policy::at_level(1));
  double sleep_s = seconds_since(start);
  std::uint64_t backed_up = 0, discarded = 0, released = 0;
  if (slept)
    for (const auto& r : *slept) {
      backed_up += r.bytes_backed_up;
      discarded += r.bytes_discarded;
      released += r.bytes_released;
      spdlog::info("  device {}: slept in {:.1f} ms: backed up {}, discarded {}, released {}", r.device,
                   r.seconds * 1e3, mib(r.bytes_backed_up), mib(r.bytes_discarded),
                   mib(r.bytes_released));
    }
  std::uint64_t weight_bytes = 0;
  for (const auto& w : weights)
    weight_bytes += w.handle.requested;
  if (slept && backed_up < weight_bytes)
    cx.fail("the sleep backed up " + mib(backed_up) + ", less than the weights' " + mib(weight_bytes));
  cx.report.push_back({"4 sleep_all level 1", sleep_s, backed_up,
                       "released " + mib(released) + ", discarded " + mib(discarded)});

  // The trainer: most of every device's memory, straight from the backend.
  start = clock_type::now();
  std::vector<cuda::chunk_handle> taken;
  std::uint64_t trained = 0;
  for (int d = 0; d < devices; ++d) {
    auto m = backend.memory(d);
    if (!m)
      continue;
    auto granularity = static_cast<std::size_t>(cx.rt.devices()[static_cast<std::size_t>(d)].granularity);
    double target = 1.0 - static_cast<double>(std::max<std::size_t>(64 * MiB, m->total / 20))
                            / static_cast<double>(m->total);
    auto got = take_until(backend, d, target, granularity, taken);
    trained += got;
    spdlog::info("  trainer: {} on device {} ({:.1f}% used)", mib(got), d, used_fraction(backend, d) * 100);
  }
  spdlog::info("step 4: the trainer holds {} for a training step", mib(trained));
  std::this_thread::sleep_for(250ms);  // a training step
  give_back(backend, taken);
  double train_s = seconds_since(start);
  spdlog::info("step 4: the trainer used {} for {:.0f} ms and gave it back", mib(trained), train_s * 1e3);
  cx.report.push_back({"4 trainer borrows memory", train_s, 0, mib(trained) + " over all devices"});

  start = clock_type::now();
  auto woke = cx.ask<std::vector<transition_report>>(cx.rt.balancer(), "wake_all", wake_all_atom::value,
                                                     std::vector<std::string>{"weights", "kv_cache"});
  double wake_s = seconds_since(start);
  std::uint64_t restored = 0, mapped = 0;
  if (woke)
    for (const auto& r : *woke) {
      restored += r.bytes_restored;
      mapped += r.bytes_mapped;
      spdlog::info("  device {}: woke in {:.1f} ms: mapped {}, restored {}", r.device, r.seconds * 1e3,
                   mib(r.bytes_mapped), mib(r.bytes_restored));
    }
  cx.report.push_back({"4 wake_all weights,kv", wake_s, restored, "mapped " + mib(mapped)});

  // The weights, byte for byte, at the same addresses.
  start = clock_type::now();
  int good = 0;
  for (const auto& w : weights) {
    auto sum = io.read(w);
    if (!sum || *sum != w.sum)
      cx.fail("weights region " + std::to_string(w.handle.region) + " on device "
              + std::to_string(w.handle.device) + " differs after the wake");
    else
      ++good;
  }
  double verify_s = seconds_since(start);
  spdlog::info("step 4: {} of {} weight tensors verified byte for byte at their addresses "
               "({} in {:.1f} ms)", good, weights.size(), mib(weight_bytes), verify_s * 1e3);
  cx.report.push_back({"4 verify weights", verify_s, weight_bytes,
                       std::to_string(good) + "/" + std::to_string(weights.size()) + " identical"});

  if (auto status = cx.ask<balancer_status>(cx.rt.balancer(), "status", status_atom::value))
    for (const auto& d : status->devices)
      if (d.state != device_state::awake || !d.asleep_tags.empty())
        cx.fail("device " + std::to_string(d.device) + " is " + to_string(d.state) + " after the wake");

  for (const auto& h : kv)
    (void)cx.ask<ok_atom>(cx.rt.balancer(), "free kv_cache", deallocate_atom::value, h);
  spdlog::info("step 4: {} pressure event(s) during the cycle", log.size() - events_before);
}

} // namespace

int run_serving_demo(const serving_options& options) {
  actors::gpumem_config cfg;
  auto config = read_runtime_config(cfg, options.runtime_args);
  if (!config)
    return 0;  // --help or --dump-config printed

  auto day_start = clock_type::now();
  int failures = 0;
  std::vector<step_line> report;
  {
    caf::actor_system sys{cfg};
    auto made = actors::runtime::create(sys, *config);
    if (!made) {
      spdlog::error("cannot start the runtime: {}", made.error().to_string());
      return 1;
    }
    auto rt = std::move(made).value();
    spdlog::info("runtime: {}; {} device(s), routing {}, pressure every {} ms",
                 rt->backend_reason(), rt->devices().size(), to_string(config->balancer.routing),
                 std::chrono::duration_cast<std::chrono::milliseconds>(config->pressure.period).count());
    for (const auto& d : rt->devices())
      spdlog::info("  device {}: {} ({}), {} total, {} free", d.device, d.name, d.backend,
                   mib(d.total_bytes), mib(d.free_bytes));

    demo_context cx(sys, *rt);
    cx.timeout = std::max<std::chrono::milliseconds>(30000ms, config->balancer.request_timeout);

    auto log = std::make_shared<event_log>();
    auto printer = sys.spawn(pressure_printer, log);
    (void)cx.ask<ok_atom>(rt->monitor(), "subscribe", subscribe_atom::value, printer);

    {
      // The staging buffer is the backend's (pinned memory of its driver): it goes
      // before the runtime that owns the backend does.
      weight_io io(rt->backend(), options.weight_size);
      if (!io.direct())
        spdlog::info("the {} backend: weights are written and verified through a pinned buffer and "
                     "the backend's copies", rt->backend().name());
      if (!io.usable()) {
        cx.fail("no pinned staging buffer for the weights");
      } else {
        auto weights = load_weights(cx, options, io);
        serve_burst(cx, options);
        pressure_episode(cx, *log, io, options);
        rl_cycle(cx, weights, io, *log, options);
        for (const auto& w : weights)
          (void)cx.ask<ok_atom>(rt->balancer(), "free weights", deallocate_atom::value, w.handle);
        if (auto stats = cx.ask<cluster_statistics>(rt->balancer(), "stats", stats_atom::value)) {
          if (stats->total.total.allocated.current != 0)
            cx.fail(mib(static_cast<std::uint64_t>(stats->total.total.allocated.current))
                    + " still allocated at the end of the day");
          spdlog::info("day totals: {} allocations, {} frees, {} OOM(s), {} sleep(s), {} wake(s), "
                       "{} trim(s), {} backed up, {} restored",
                       stats->total.total.allocations, stats->total.total.frees, stats->total.ooms,
                       stats->total.sleeps, stats->total.wakes, stats->total.trims,
                       mib(stats->total.bytes_backed_up), mib(stats->total.bytes_restored));
        }
      }
    }
    (void)cx.ask<ok_atom>(rt->monitor(), "unsubscribe", unsubscribe_atom::value, printer);
    caf::anon_send_exit(printer, caf::exit_reason::user_shutdown);
    printer = nullptr;

    auto stop = clock_type::now();
    if (!rt->shutdown())
      cx.fail("an actor of the runtime did not stop in time");
    cx.report.push_back({"shutdown", seconds_since(stop), 0, "every actor stopped"});
    failures = cx.failures;
    report = std::move(cx.report);
    rt.reset();
  }  // ~actor_system

  return demo::print_report(report, seconds_since(day_start), failures);
}

} // namespace gpumem::tool
