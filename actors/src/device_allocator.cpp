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
/// Private: the hold of a prepared transaction (its id) ran out.
using hold_atom = caf::atom_constant<caf::atom("gpm_hold")>;
/// Private: try the wake of offloaded tags again (the retry's generation).
using retry_atom = caf::atom_constant<caf::atom("gpm_retry")>;
/// Private: give back the cache the engine has kept idle for its cache_decay.
using cache_check_atom = caf::atom_constant<caf::atom("gpm_cache")>;

using behavior_type = device_allocator_actor::behavior_type;

behavior_type make_behavior(device_allocator_pointer self, allocator_phase phase);

/// A transition runs or is prepared: requests that change the engine wait or fail.
bool busy(allocator_phase phase) {
  return phase == allocator_phase::transition || phase == allocator_phase::prepared;
}

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
  if (busy(phase)) {
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
  return to_handle(*st.engine, *r, st.device);
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

void schedule_cache_check(device_allocator_pointer self) {
  auto interval = self->state.options.cache_check_interval;
  if (interval.count() > 0)
    caf::delayed_anon_send(caf::actor_cast<caf::actor>(self), interval, cache_check_atom::value);
}

void on_cache_check(device_allocator_pointer self) {
  auto& st = self->state;
  if (!busy(st.phase)) {
    auto released = st.engine->release_idle();
    if (released.segments_released > 0)
      spdlog::debug("device {}: gave back {} B of cache idle for {} ms ({} segments)", st.device,
                    released.bytes_released, st.engine->config().cache_decay.count(),
                    released.segments_released);
  }
  schedule_cache_check(self);
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
  while (!st.queued.empty() && !busy(st.phase)) {
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
  if (origin == transition_origin::collective)
    return kind == core::transition_kind::sleep ? "collective sleep" : "collective wake";
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
  st.transaction = 0;
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
  if (!busy(st.phase))
    detail::after_transition(self);
}

/// Phase one of a collective transition is done and nothing is lost: answer the
/// prepare, wait for commit or abort, and abort on our own when the hold runs out.
void enter_prepared(device_allocator_pointer self, const core::transition_report& report) {
  auto& st = self->state;
  enter_phase(self, allocator_phase::prepared);
  spdlog::info("device {}: {} prepared (transaction {}): {} B backed up, {} B restored; "
               "held {} ms for commit or abort",
               st.device, transition_name(st.transition, st.origin), st.transaction,
               report.bytes_backed_up, report.bytes_restored, st.hold_ms);
  auto rp = std::move(st.transition_promise);
  st.transition_promise = {};
  rp.deliver(to_message(report, st.device));
  caf::delayed_anon_send(caf::actor_cast<caf::actor>(self),
                         std::chrono::milliseconds{st.hold_ms}, hold_atom::value,
                         st.transaction);
}

/// Abandons the collective transaction under way or prepared: the engine loses
/// nothing; a prepare still running is answered `why`.
void abort_collective(device_allocator_pointer self, const std::string& why) {
  auto& st = self->state;
  auto kind = st.transition;
  auto running = st.phase == allocator_phase::transition;
  (void)st.engine->abort();
  spdlog::warn("device {}: {} (transaction {}) aborted, {}: {}", st.device,
               transition_name(kind, st.origin), st.transaction,
               kind == core::transition_kind::sleep
                 ? "every tag stays awake with its bytes in place"
                 : "every tag it named stays asleep with its backups",
               why);
  if (running && st.transition_promise.pending())
    st.transition_promise.deliver(make_error(
      gpumem_errc::invalid_transition,
      "device " + std::to_string(st.device) + ": " + transition_name(kind, st.origin) +
        " aborted before it was prepared (" + why + "); nothing changed"));
  st.transition_promise = {};
  st.transaction = 0;
  enter_phase(self, resting_phase(st));
  replay(self);
  if (!busy(st.phase))
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
  if (st.origin == transition_origin::collective && *done && st.engine->prepared()) {
    enter_prepared(self, **done);
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
  if (busy(phase) && !queue_mode(st))
    return busy_error(st);
  auto rp = self->make_response_promise<transition_report>();
  if (busy(phase)) {
    st.queued.push_back({[self, rp, start, arg]() { start(self, arg, rp); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); }});
    return rp;
  }
  start(self, arg, rp);
  return rp;
}

// -- collective transitions (two phases) ---------------------------------------------

/// The tags a collective transition names that it can move here: for a sleep the
/// awake ones, for a wake the sleeping ones (tags this device does not know are not
/// its to move). Empty `named`: every such tag.
std::vector<std::string> movable_tags(const device_allocator_state& st,
                                      const std::vector<std::string>& named, bool asleep) {
  std::vector<std::string> result;
  auto known = st.engine->tags();
  for (const auto& tag : named.empty() ? known : named)
    if (std::find(known.begin(), known.end(), tag) != known.end() &&
        st.engine->tag_asleep(tag) == asleep &&
        std::find(result.begin(), result.end(), tag) == result.end())
      result.push_back(tag);
  return result;
}

/// Nothing to move here: the prepare succeeds with an empty report (vLLM's wake_up
/// is idempotent, and so is a sleep of what already sleeps).
void prepare_idle(device_allocator_pointer self, core::transition_kind kind,
                  std::uint64_t transaction,
                  caf::typed_response_promise<transition_report> rp) {
  auto& st = self->state;
  st.idle_transaction = transaction;
  st.idle_kind = kind;
  transition_report report;
  report.device = st.device;
  report.kind = kind == core::transition_kind::sleep ? messages::transition_kind::sleep
                                                     : messages::transition_kind::wake;
  rp.deliver(std::move(report));
}

void begin_collective(device_allocator_pointer self, core::transition_kind kind,
                      core::engine_result<void> begun, std::uint64_t transaction,
                      std::uint64_t hold_ms,
                      caf::typed_response_promise<transition_report> rp) {
  auto& st = self->state;
  if (!begun) {
    spdlog::warn("device {}: collective {} refused: {}", st.device,
                 kind == core::transition_kind::sleep ? "sleep" : "wake",
                 begun.error().to_string());
    rp.deliver(to_error(begun.error()));
    return;
  }
  st.transition_promise = std::move(rp);
  st.transaction = transaction;
  st.hold_ms = hold_ms;
  detail::enter_transition(self, kind, transition_origin::collective);
}

struct prepare_args {
  sleep_policy policy;             // prepare_sleep
  std::vector<std::string> tags;   // prepare_wake
  std::uint64_t transaction = 0;
  std::uint64_t hold_ms = 0;
};

void start_prepare_sleep(device_allocator_pointer self, const prepare_args& a,
                         caf::typed_response_promise<transition_report> rp) {
  auto& st = self->state;
  auto converted = to_core(a.policy);
  if (!converted) {
    rp.deliver(std::move(converted.error()));
    return;
  }
  auto tags = movable_tags(st, a.policy.tags, false);
  if (tags.empty()) {
    prepare_idle(self, core::transition_kind::sleep, a.transaction, std::move(rp));
    return;
  }
  converted->tags = std::move(tags);
  begin_collective(self, core::transition_kind::sleep,
                   st.engine->begin_sleep(*converted, core::commit_mode::on_commit),
                   a.transaction, a.hold_ms, std::move(rp));
}

void start_prepare_wake(device_allocator_pointer self, const prepare_args& a,
                        caf::typed_response_promise<transition_report> rp) {
  auto& st = self->state;
  auto tags = movable_tags(st, a.tags, true);
  if (tags.empty()) {
    prepare_idle(self, core::transition_kind::wake, a.transaction, std::move(rp));
    return;
  }
  // Named: in the order given; all: the engine's order (weights first).
  begin_collective(self, core::transition_kind::wake,
                   st.engine->begin_wake(a.tags.empty() ? std::vector<std::string>{} : tags,
                                         core::commit_mode::on_commit),
                   a.transaction, a.hold_ms, std::move(rp));
}

/// A prepare: started now, queued behind the transition under way (an abort of its
/// id drops it from the queue), or refused in fail mode.
template <class Start>
caf::result<transition_report> prepare_request(device_allocator_pointer self,
                                               allocator_phase phase, Start start,
                                               prepare_args args) {
  auto& st = self->state;
  if (busy(phase) && !queue_mode(st))
    return busy_error(st);
  auto rp = self->make_response_promise<transition_report>();
  if (busy(phase)) {
    auto transaction = args.transaction;
    st.queued.push_back({[self, rp, start, args]() { start(self, args, rp); },
                         [rp](caf::error e) mutable { rp.deliver(std::move(e)); },
                         transaction});
    return rp;
  }
  start(self, args, rp);
  return rp;
}

caf::error not_prepared(const device_allocator_state& st, std::uint64_t transaction) {
  return make_error(gpumem_errc::invalid_transition,
                    "device " + std::to_string(st.device) + ": transaction " +
                      std::to_string(transaction) +
                      " is not prepared here (never prepared, or aborted: by an abort or "
                      "when its hold ran out); nothing changed");
}

caf::result<transition_report> on_commit(device_allocator_pointer self,
                                         std::uint64_t transaction) {
  auto& st = self->state;
  if (transaction != 0 && transaction == st.idle_transaction) {
    st.idle_transaction = 0;
    transition_report report;
    report.device = st.device;
    report.kind = st.idle_kind == core::transition_kind::sleep
                    ? messages::transition_kind::sleep
                    : messages::transition_kind::wake;
    return report;
  }
  if (transaction == 0 || transaction != st.transaction ||
      st.phase != allocator_phase::prepared)
    return not_prepared(st, transaction);
  auto rp = self->make_response_promise<transition_report>();
  st.transition_promise = rp;
  finish_transition(self, st.engine->commit());
  return rp;
}

ok_atom on_abort(device_allocator_pointer self, std::uint64_t transaction) {
  auto& st = self->state;
  if (transaction == 0)
    return ok_atom::value;
  if (transaction == st.idle_transaction) {
    st.idle_transaction = 0;
    return ok_atom::value;
  }
  if (transaction == st.transaction && busy(st.phase)) {
    abort_collective(self, "aborted by its coordinator");
    return ok_atom::value;
  }
  // Queued behind another transition: it never starts.
  for (auto i = st.queued.begin(); i != st.queued.end(); ++i)
    if (i->transaction == transaction) {
      auto fail = std::move(i->fail);
      st.queued.erase(i);
      fail(make_error(gpumem_errc::invalid_transition,
                      "device " + std::to_string(st.device) + ": transaction " +
                        std::to_string(transaction) +
                        " aborted before it began; nothing changed"));
      break;
    }
  return ok_atom::value;  // not held here: as it was
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
  result.prepared_transaction = st.phase == allocator_phase::prepared ? st.transaction : 0;
  if (const auto& lost = st.engine->device_lost())
    result.lost = lost->to_string();
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
    [=](prepare_sleep_atom, sleep_policy policy, std::uint64_t transaction,
        std::uint64_t hold_ms) -> caf::result<transition_report> {
      return prepare_request(self, phase, start_prepare_sleep,
                             prepare_args{std::move(policy), {}, transaction, hold_ms});
    },
    [=](prepare_wake_atom, std::vector<std::string> tags, std::uint64_t transaction,
        std::uint64_t hold_ms) -> caf::result<transition_report> {
      return prepare_request(self, phase, start_prepare_wake,
                             prepare_args{{}, std::move(tags), transaction, hold_ms});
    },
    // Never queued: they end what holds the queue.
    [=](commit_atom, std::uint64_t transaction) -> caf::result<transition_report> {
      return on_commit(self, transaction);
    },
    [=](abort_atom, std::uint64_t transaction) -> ok_atom {
      return on_abort(self, transaction);
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

const char* to_string(asleep_behaviour behaviour) noexcept {
  for (const auto& [name, value] : asleep_behaviour_names)
    if (value == behaviour)
      return name.data();
  return "?";
}

const char* to_string(allocator_phase phase) noexcept {
  switch (phase) {
    case allocator_phase::awake: return "awake";
    case allocator_phase::transition: return "transition";
    case allocator_phase::prepared: return "prepared";
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
      auto self = static_cast<device_allocator_pointer>(ptr);
      auto& content = x.content();
      if (content.match_elements<poll_atom>()) {
        on_poll(self);
        return caf::message{};
      }
      if (content.match_elements<hold_atom, std::uint64_t>()) {
        auto transaction = content.get_as<std::uint64_t>(1);
        auto& s = self->state;
        if (transaction == s.transaction && s.phase == allocator_phase::prepared)
          abort_collective(self, "no commit or abort came within its hold of " +
                                   std::to_string(s.hold_ms) + " ms");
        return caf::message{};
      }
      if (content.match_elements<retry_atom, std::uint64_t>()) {
        detail::on_wake_retry(self, content.get_as<std::uint64_t>(1));
        return caf::message{};
      }
      if (content.match_elements<cache_check_atom>()) {
        on_cache_check(self);
        return caf::message{};
      }
      return caf::sec::unexpected_message;
    });
  st.phase = resting_phase(st);
  schedule_cache_check(self);
  spdlog::info("device {}: allocator starts {} (requests while asleep: {})", device,
               to_string(st.phase), to_string(options.while_asleep));
  return make_behavior(self, st.phase);
}

} // namespace gpumem::actors
