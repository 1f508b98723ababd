#include "gpumem/actors/device_allocator.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/atom.hpp>
#include <caf/message_view.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>
#include <caf/type_erased_tuple.hpp>
#include <spdlog/spdlog.h>

#include "device_allocator_detail.hpp"
#include "protocol_convert.hpp"

namespace gpumem::actors {

using namespace messages;

namespace {

/// Private: the actor tells itself to advance the transition. Not in the typed
/// interface; sent anonymously to the untyped handle and caught by the default handler.
using poll_atom = caf::atom_constant<caf::atom("gpm_poll")>;

using behavior_type = device_allocator_actor::behavior_type;

behavior_type make_behavior(device_allocator_pointer self, allocator_phase phase);

bool queue_mode(const device_allocator_state& st) {
  return st.options.while_asleep == asleep_behaviour::queue;
}

bool is_tag_asleep(const caf::error& e) {
  return gpumem_code(e) == gpumem_errc::tag_asleep;
}

template <class T>
void deliver(caf::typed_response_promise<T>& rp, caf::expected<T> x) {
  if (x)
    rp.deliver(std::move(*x));
  else
    rp.deliver(std::move(x.error()));
}

caf::error busy_error(const device_allocator_state& st) {
  return make_error(gpumem_errc::transition_in_progress,
                    "device " + std::to_string(st.device) + ": a " +
                      (st.transition == core::transition_kind::sleep ? "sleep" : "wake") +
                      " is in progress");
}

/// What fail mode answers a request that needs the device awake during a transition
/// or a tag awake while it sleeps: device_asleep, with what is asleep or under way.
caf::error asleep_error(const device_allocator_state& st, const caf::error* cause = nullptr) {
  auto what = cause ? error_message(*cause)
                    : std::string{"a "} +
                        (st.transition == core::transition_kind::sleep ? "sleep" : "wake") +
                        " is in progress";
  return make_error(gpumem_errc::device_asleep,
                    "device " + std::to_string(st.device) + ": " + what +
                      " (while-asleep = fail: retry after the wake)");
}

/// Serves one request that changes the engine, per the phase:
/// transition: queue it (answered after the transition) or fail it at once;
/// otherwise: run it; a tag_asleep answer parks it until a wake (queue mode) or is
/// answered device_asleep (fail mode).
template <class T, class Op>
caf::result<T> serve(device_allocator_pointer self, allocator_phase phase, Op op);

template <class T, class Op>
void run_or_park(device_allocator_pointer self, caf::typed_response_promise<T> rp, Op op) {
  auto& st = self->state;
  caf::expected<T> r = op();
  if (!r && is_tag_asleep(r.error()) && queue_mode(st)) {
    st.parked.push_back({[self, rp, op]() mutable { run_or_park<T>(self, rp, op); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); }});
    return;
  }
  deliver(rp, std::move(r));
}

template <class T, class Op>
caf::result<T> serve(device_allocator_pointer self, allocator_phase phase, Op op) {
  auto& st = self->state;
  if (phase == allocator_phase::transition) {
    if (!queue_mode(st))
      return asleep_error(st);
    auto rp = self->make_response_promise<T>();
    st.queued.push_back({[self, rp, op]() mutable { run_or_park<T>(self, rp, op); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); }});
    return rp;
  }
  caf::expected<T> r = op();
  if (!r && is_tag_asleep(r.error())) {
    if (!queue_mode(st))
      return asleep_error(st, &r.error());
    auto rp = self->make_response_promise<T>();
    st.parked.push_back({[self, rp, op]() mutable { run_or_park<T>(self, rp, op); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); }});
    return rp;
  }
  return r;
}

// -- the operations, run against the engine ------------------------------------------

caf::expected<region_handle> do_allocate(device_allocator_state& st,
                                         const allocation_request& request) {
  auto converted = to_core(request, st.options.strategy_for(request.tag));
  if (!converted)
    return std::move(converted.error());
  auto r = st.engine->allocate(*converted);
  if (!r)
    return to_error(r.error());
  return to_handle(*r, st.device);
}

caf::expected<batch_allocation_response>
do_batch(device_allocator_state& st, const batch_allocation_request& batch) {
  batch_allocation_response result;
  result.regions.reserve(batch.requests.size());
  auto roll_back = [&] {
    for (auto i = result.regions.rbegin(); i != result.regions.rend(); ++i)
      if (auto freed = st.engine->deallocate(i->region); !freed)
        spdlog::error("device {}: batch roll-back could not free region {}: {}", st.device,
                      i->region, freed.error().to_string());
  };
  // Refuse a batch that needs a sleeping tag before allocating anything (an awake
  // engine has none).
  if (st.engine->state() != core::engine_state::awake)
    for (const auto& request : batch.requests)
      if (!request.tag.empty() && st.engine->tag_asleep(request.tag))
        return make_error(gpumem_errc::tag_asleep,
                          "batch: tag '" + request.tag + "' is asleep");
  for (std::size_t i = 0; i < batch.requests.size(); ++i) {
    auto r = do_allocate(st, batch.requests[i]);
    if (!r) {
      roll_back();
      auto e = std::move(r.error());
      auto message = "batch request " + std::to_string(i) + " of " +
                     std::to_string(batch.requests.size()) + " failed (" +
                     std::to_string(i) + " allocation(s) undone): " + error_message(e);
      auto code = gpumem_code(e).value_or(gpumem_errc::device_failure);
      return make_error(code, std::move(message));
    }
    result.regions.push_back(std::move(*r));
  }
  return result;
}

/// Frees every region of the batch, or none when one is not live here (checked first,
/// duplicates included, so nothing is freed before the answer is known).
caf::expected<ok_atom> do_batch_free(device_allocator_state& st,
                                     const batch_deallocation_request& batch) {
  std::vector<std::uint64_t> ids;
  ids.reserve(batch.regions.size());
  for (std::size_t i = 0; i < batch.regions.size(); ++i) {
    const auto& h = batch.regions[i];
    auto refuse = [&](gpumem_errc code, const std::string& why) {
      return make_error(code, "batch free: region " + std::to_string(i) + " of " +
                                std::to_string(batch.regions.size()) + " (id " +
                                std::to_string(h.region) + "): " + why + "; nothing freed");
    };
    if (h.device != st.device)
      return refuse(gpumem_errc::unknown_device, "belongs to device " +
                                                   std::to_string(h.device) +
                                                   ", not device " + std::to_string(st.device));
    if (auto live = st.engine->can_deallocate(h.region); !live)
      return refuse(gpumem_code(to_error(live.error())).value_or(gpumem_errc::unknown_region),
                    live.error().message());
    ids.push_back(h.region);
  }
  std::sort(ids.begin(), ids.end());
  if (auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end())
    return make_error(gpumem_errc::double_free, "batch free: region " + std::to_string(*dup) +
                                                  " is named twice; nothing freed");
  for (auto id : ids)
    if (auto freed = st.engine->deallocate(id); !freed)  // checked live above
      return to_error(freed.error());
  return ok_atom::value;
}

caf::expected<ok_atom> done(core::engine_result<void> r) {
  if (!r)
    return to_error(r.error());
  return ok_atom::value;
}

// -- transitions ---------------------------------------------------------------------

void schedule_poll(device_allocator_pointer self) {
  auto hdl = caf::actor_cast<caf::actor>(self);
  auto interval = self->state.options.poll_interval;
  if (interval.count() <= 0)
    caf::anon_send(hdl, poll_atom::value);
  else
    caf::delayed_anon_send(hdl, interval, poll_atom::value);
}

void enter_phase(device_allocator_pointer self, allocator_phase phase) {
  auto& st = self->state;
  if (st.phase != phase)
    spdlog::info("device {}: {} -> {}", st.device, to_string(st.phase), to_string(phase));
  st.phase = phase;
  self->become(make_behavior(self, phase));
}

allocator_phase resting_phase(const device_allocator_state& st) {
  return st.engine->state() == core::engine_state::asleep ? allocator_phase::asleep
                                                          : allocator_phase::awake;
}

/// Serves what waited for the transition, in order, until one starts another.
void replay(device_allocator_pointer self) {
  auto& st = self->state;
  while (!st.queued.empty() && st.phase != allocator_phase::transition) {
    auto next = std::move(st.queued.front());
    st.queued.pop_front();
    next.run();
  }
}

void retry_parked(device_allocator_pointer self) {
  auto& st = self->state;
  auto parked = std::move(st.parked);
  st.parked.clear();
  for (auto& p : parked)
    p.run();  // parks itself again while its tag sleeps
}

const char* transition_name(core::transition_kind kind, transition_origin origin) {
  if (origin == transition_origin::pressure)
    return kind == core::transition_kind::sleep ? "offload" : "wake of offloaded tags";
  return kind == core::transition_kind::sleep ? "sleep" : "wake";
}

void finish_transition(device_allocator_pointer self,
                       core::engine_result<core::transition_report> r) {
  auto& st = self->state;
  auto rp = std::move(st.transition_promise);
  st.transition_promise = {};
  auto kind = st.transition;
  auto origin = st.origin;
  const char* what = transition_name(kind, origin);
  enter_phase(self, resting_phase(st));
  if (r)
    spdlog::info("device {}: {} done in {:.3f} s ({} polls): backed up {} B, discarded {} B, "
                 "released {} B, mapped {} B, restored {} B",
                 st.device, what, r->seconds, st.polls, r->bytes_backed_up,
                 r->bytes_discarded, r->bytes_released, r->bytes_mapped, r->bytes_restored);
  else
    spdlog::warn("device {}: {} failed and was rolled back: {}", st.device, what,
                 r.error().to_string());
  if (origin == transition_origin::pressure) {
    detail::pressure_transition_done(self, kind, r);
  } else if (r) {
    if (kind == core::transition_kind::wake)
      detail::client_woke(st, r->tags);
    rp.deliver(to_message(*r, st.device));
  } else {
    rp.deliver(to_error(r.error()));
  }
  if (kind == core::transition_kind::wake)
    retry_parked(self);
  replay(self);
  if (st.phase != allocator_phase::transition)
    detail::after_transition(self);
}

void on_poll(device_allocator_pointer self) {
  auto& st = self->state;
  if (st.phase != allocator_phase::transition)
    return;  // a stale poll
  ++st.polls;
  auto done = st.engine->advance();
  if (!done) {
    schedule_poll(self);
    return;
  }
  finish_transition(self, std::move(*done));
}

void begin_transition(device_allocator_pointer self, core::transition_kind kind,
                      core::engine_result<void> begun,
                      caf::typed_response_promise<transition_report> rp) {
  auto& st = self->state;
  const char* what = kind == core::transition_kind::sleep ? "sleep" : "wake";
  if (!begun) {
    spdlog::warn("device {}: {} refused: {}", st.device, what, begun.error().to_string());
    rp.deliver(to_error(begun.error()));
    return;
  }
  st.transition_promise = std::move(rp);
  detail::enter_transition(self, kind, transition_origin::client);
}

void start_sleep(device_allocator_pointer self, const sleep_policy& policy,
                 caf::typed_response_promise<transition_report> rp) {
  auto converted = to_core(policy);
  if (!converted) {
    rp.deliver(std::move(converted.error()));
    return;
  }
  begin_transition(self, core::transition_kind::sleep,
                   self->state.engine->begin_sleep(*converted), std::move(rp));
}

void start_wake(device_allocator_pointer self, const std::vector<std::string>& tags,
                caf::typed_response_promise<transition_report> rp) {
  begin_transition(self, core::transition_kind::wake, self->state.engine->begin_wake(tags),
                   std::move(rp));
}

template <class Start, class Arg>
caf::result<transition_report> transition_request(device_allocator_pointer self,
                                                  allocator_phase phase, Start start,
                                                  Arg arg) {
  auto& st = self->state;
  if (phase == allocator_phase::transition && !queue_mode(st))
    return busy_error(st);
  auto rp = self->make_response_promise<transition_report>();
  if (phase == allocator_phase::transition) {
    st.queued.push_back({[self, rp, start, arg]() { start(self, arg, rp); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); }});
    return rp;
  }
  start(self, arg, rp);
  return rp;
}

// -- observation ---------------------------------------------------------------------

device_status status_of(const device_allocator_state& st) {
  device_status result;
  result.device = st.device;
  result.state = to_message(st.engine->state());
  result.pressure = st.pressure;
  for (auto& tag : st.engine->tags())
    if (st.engine->tag_asleep(tag))
      result.asleep_tags.push_back(tag);
  const auto& total = st.engine->statistics().total;
  result.live_regions = total.allocations - total.frees;
  result.physical_bytes = st.engine->physical_bytes();
  result.pending_requests = st.queued.size() + st.parked.size();
  result.fragmentation = st.engine->fragmentation();
  detail::add_response_status(st, result);
  return result;
}

device_info info_of(const device_allocator_state& st) {
  device_info result;
  result.device = st.device;
  result.state = to_message(st.engine->state());
  if (auto* backend = st.options.backend) {
    int ordinal = st.engine->device();
    result.backend = std::string{backend->name()};
    if (auto props = backend->properties(ordinal)) {
      result.name = props->name;
      result.total_bytes = props->total_memory;
      result.granularity = props->granularity_minimum;
    }
    if (auto mem = backend->memory(ordinal)) {
      result.free_bytes = mem->free;
      result.total_bytes = mem->total;
    }
  }
  return result;
}

// -- the behaviors -------------------------------------------------------------------

behavior_type make_behavior(device_allocator_pointer self, allocator_phase phase) {
  return {
    [=](allocate_atom, allocation_request& request) -> caf::result<region_handle> {
      return serve<region_handle>(self, phase, [self, request = std::move(request)] {
        return do_allocate(self->state, request);
      });
    },
    [=](deallocate_atom, std::uint64_t id) -> caf::result<ok_atom> {
      return serve<ok_atom>(self, phase,
                            [self, id] { return done(self->state.engine->deallocate(id)); });
    },
    [=](deallocate_at_atom, std::uint64_t address) -> caf::result<ok_atom> {
      return serve<ok_atom>(self, phase, [self, address] {
        return done(self->state.engine->deallocate_at(static_cast<cuda::device_ptr>(address)));
      });
    },
    [=](touch_atom, std::uint64_t id) -> caf::result<ok_atom> {
      return serve<ok_atom>(self, phase,
                            [self, id] { return done(self->state.engine->touch(id)); });
    },
    [=](batch_allocate_atom,
        batch_allocation_request& batch) -> caf::result<batch_allocation_response> {
      return serve<batch_allocation_response>(self, phase, [self, batch = std::move(batch)] {
        return do_batch(self->state, batch);
      });
    },
    [=](batch_deallocate_atom, batch_deallocation_request& batch) -> caf::result<ok_atom> {
      return serve<ok_atom>(self, phase, [self, batch = std::move(batch)] {
        return do_batch_free(self->state, batch);
      });
    },
    [=](sleep_atom, sleep_policy policy) -> caf::result<transition_report> {
      return transition_request(self, phase, start_sleep, std::move(policy));
    },
    [=](wake_atom, std::vector<std::string> tags) -> caf::result<transition_report> {
      return transition_request(self, phase, start_wake, std::move(tags));
    },
    [=](trim_atom) -> caf::result<trim_report> {
      return serve<trim_report>(self, phase, [self]() -> caf::expected<trim_report> {
        auto& st = self->state;
        return to_message(st.engine->trim(), st.device);
      });
    },
    [=](defragment_atom) -> caf::result<defragment_report> {
      return serve<defragment_report>(self, phase,
                                      [self]() -> caf::expected<defragment_report> {
                                        auto& st = self->state;
                                        return to_message(st.engine->defragment(),
                                                          st.device);
                                      });
    },
    [=](stats_atom) -> statistics {
      auto& st = self->state;
      return to_message(st.engine->statistics(), st.device);
    },
    [=](snapshot_atom) -> memory_snapshot {
      auto& st = self->state;
      return to_message(st.engine->snapshot(), st.device);
    },
    [=](info_atom) -> device_info { return info_of(self->state); },
    [=](status_atom) -> device_status { return status_of(self->state); },
    [=](pressure_event event) { detail::on_pressure(self, event); },
  };
}

} // namespace

void detail::enter_transition(device_allocator_pointer self, core::transition_kind kind,
                              transition_origin origin) {
  auto& st = self->state;
  st.transition = kind;
  st.origin = origin;
  st.polls = 0;
  enter_phase(self, allocator_phase::transition);
  spdlog::info("device {}: {} begins", st.device, transition_name(kind, origin));
  schedule_poll(self);
}

const char* to_string(allocator_phase phase) noexcept {
  switch (phase) {
    case allocator_phase::awake: return "awake";
    case allocator_phase::transition: return "transition";
    case allocator_phase::asleep: return "asleep";
  }
  return "unknown";
}

device_allocator_state::~device_allocator_state() {
  // The actor is going away: nobody may wait forever for an answer.
  auto gone = [this] {
    return make_error(gpumem_errc::device_failure,
                      "device " + std::to_string(device) + ": the allocator terminated");
  };
  if (transition_promise.pending())
    transition_promise.deliver(gone());
  for (auto& p : queued)
    p.fail(gone());
  for (auto& p : parked)
    p.fail(gone());
}

device_allocator_actor::behavior_type
device_allocator(device_allocator_pointer self, std::unique_ptr<core::engine> engine,
                 std::int32_t device, device_allocator_options options) {
  auto& st = self->state;
  st.engine = std::move(engine);
  st.device = device;
  st.options = options;
  if (!st.engine) {
    spdlog::error("device {}: allocator spawned without an engine", device);
    self->quit(make_error(gpumem_errc::invalid_config, "device allocator without an engine"));
    return make_behavior(self, allocator_phase::awake);  // never runs: the actor quits
  }
  self->set_default_handler(
    [](caf::scheduled_actor* ptr, caf::message_view& x) -> caf::result<caf::message> {
      if (x.content().match_elements<poll_atom>()) {
        on_poll(static_cast<device_allocator_pointer>(ptr));
        return caf::message{};
      }
      return caf::sec::unexpected_message;
    });
  st.phase = resting_phase(st);
  spdlog::info("device {}: allocator starts {} (requests while asleep: {})", device,
               to_string(st.phase), to_string(options.while_asleep));
  return make_behavior(self, st.phase);
}

} // namespace gpumem::actors
