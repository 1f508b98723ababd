// The public protocol: every value type through CAF's binary serializer, and every
// message of every interface, every value type and every error code between two actor
// systems over loopback TCP (which serializes for real and needs both registrations).

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "gpumem/messages/all.hpp"

using namespace gpumem::messages;
using namespace std::chrono_literals;

namespace {

// Generous: over loopback a reply takes well under a millisecond, a loaded machine
// can take seconds.
constexpr auto request_timeout = std::chrono::seconds(60);
constexpr std::uint64_t huge_size = std::uint64_t{1} << 50;
constexpr std::uint64_t error_id_base = 1000;  // deallocate(1000 + code) answers that code
const std::string oom_text = "out of memory: 1125899906842624 bytes requested, 8 GiB free";

// -- sample values, every field away from its default ---------------------------

region_handle sample_handle() {
  return {3, 42, 0x7f0000201000, 2u << 20, 1'500'000, "kv_cache"};
}

allocation_request sample_request() {
  return {1'500'000, "kv_cache", strategy::dedicated, 4096, 3};
}

batch_allocation_request sample_batch() {
  return {{sample_request(), {64, "weights", strategy::first_fit, 0, any_device}}};
}

batch_allocation_response sample_batch_response() {
  return {{sample_handle(), {3, 43, 0x7f0000401000, 512, 64, "weights"}}};
}

batch_deallocation_request sample_batch_free() {
  return {sample_batch_response().regions};
}

sleep_policy sample_policy() {
  return sleep_policy::backing_up({"weights", "kv_cache"}, {"weights", "kv_cache", "scratch"});
}

transition_report sample_report(transition_kind kind, std::int32_t device = 3) {
  transition_report r;
  r.device = device;
  r.kind = kind;
  r.tags = {"weights", "kv_cache"};
  r.bytes_backed_up = 1u << 30;
  r.bytes_discarded = 123456789;
  r.bytes_released = 3u << 29;
  r.bytes_mapped = 7u << 20;
  r.bytes_restored = 5u << 20;
  r.seconds = 0.125;
  r.copy_seconds = 0.0625;
  return r;
}

trim_report sample_trim() {
  return {3, 64u << 20, 2};
}

defragment_report sample_defragment() {
  return {3, 64u << 20, 6u << 20, 3, 0.375, 0.125};
}

stat sample_stat(std::int64_t base) {
  return {base, base * 2, base * 5, base * 4 - 7};
}

stat_grid sample_grid(std::int64_t base) {
  return {sample_stat(base), sample_stat(base + 1), sample_stat(base + 2),
          sample_stat(base + 3), sample_stat(-base), 17, 9};
}

statistics sample_statistics(std::int32_t device = 3) {
  statistics s;
  s.device = device;
  s.total = sample_grid(1000);
  s.tags = {{"kv_cache", sample_grid(100)}, {"weights", sample_grid(900)}};
  s.ooms = 1;
  s.oom_retries = 2;
  s.segments_created = 3;
  s.segments_released = 4;
  s.chunks_created = 5;
  s.chunks_reused = 6;
  s.chunks_released = 7;
  s.sleeps = 8;
  s.wakes = 9;
  s.failed_transitions = 10;
  s.bytes_backed_up = 11;
  s.bytes_restored = 12;
  s.bytes_discarded = 13;
  s.sleep_seconds = 1.5;
  s.wake_seconds = 2.25;
  s.trims = 14;
  s.defragmentations = 15;
  s.bytes_trimmed = std::uint64_t{1} << 40;
  s.sleep_durations = {{0.01, 0.1, 1}, {1, 5, 2, 0}};
  s.wake_durations = {{0.01, 0.1, 1}, {0, 0, 8, 1}};
  return s;
}

cluster_statistics sample_cluster_statistics() {
  return {sample_statistics(-1), {sample_statistics(0), sample_statistics(1)}};
}

memory_snapshot sample_snapshot() {
  // Big (a real snapshot is), with quotes, newlines, and bytes beyond ASCII.
  std::string json = "{\n  \"device\": 3,\n  \"backend\": \"host\",\n  \"note\": \"\xc3\xa9\\\"\",\n"
                     "  \"segments\": [";
  for (int i = 0; i < 4000; ++i)
    json += "{\"address\": " + std::to_string(0x7f0000000000 + i * 4096) + ", \"size\": 4096},";
  json += "{}]\n}\n";
  return {3, std::move(json)};
}

device_info sample_info(std::int32_t device = 3) {
  return {device, "NVIDIA H100 80GB HBM3", "cuda", 85'031'714'816, 1'234'567'890,
          2u << 20, device_state::falling_asleep};
}

pressure_event sample_event(std::int32_t device = 3) {
  return {device, 900u << 20, 80ull << 30, pressure_level::critical, pressure_level::warning,
          1'700'000'000'123'456'789};
}

device_status sample_status(pressure_level pressure = pressure_level::warning) {
  return {3, device_state::asleep, pressure, {"kv_cache", "scratch"}, 77, 3u << 30, 2, 0.25,
          {"kv_cache"}, 9, 1.75, 12.5, 5u << 20, 4, 3, 7ull << 30,
          "wake failed (out of memory); next try in 400 ms", 2, 42,
          "CUDA_ERROR_ILLEGAL_ADDRESS: cuMemcpyDtoHAsync(device 3, ...)", 20.5,
          {{0.01, 0.1}, {3, 5, 1}}};
}

balancer_status sample_balancer_status() {
  auto other = sample_status();
  other.device = 4;
  other.state = device_state::waking;
  return {"least_loaded", {sample_status(), other}, 1000, 3};
}

pressure_monitor_status sample_monitor_status(std::uint64_t subscribers) {
  return {{sample_event(3), sample_event(4)}, subscribers, 50'000'000, 12};
}

node_info sample_node_info() {
  return {"5D1C0A#4242", "gpu-node-7", 4242, {sample_info(0), sample_info(1)}, 5000, 300000};
}

std::string mismatch(const char* what) {
  return std::string{what} + " arrived altered";
}

// -- stubs of the three interfaces, answering the samples to the samples ---------

/// CAF 0.17 spawns a function-based actor without arguments through a null argument
/// tuple (UndefinedBehaviorSanitizer: reference binding to null pointer, in CAF's own
/// headers). Every stand-in here takes this empty tag so that spawn always has one.
struct spawn_tag {};

struct allocator_state {
  pressure_level pressure = pressure_level::normal;
  static inline const char* name = "allocator_stub";
};

device_allocator_actor::behavior_type
allocator_stub(device_allocator_actor::stateful_pointer<allocator_state> self, spawn_tag) {
  return {
    [=](allocate_atom, const allocation_request& r) -> caf::result<region_handle> {
      if (r.size >= huge_size)
        return make_error(gpumem_errc::out_of_memory, oom_text);
      if (!(r == sample_request()))
        return make_error(gpumem_errc::invalid_config, mismatch("allocation_request"));
      return sample_handle();
    },
    [=](deallocate_atom, std::uint64_t id) -> caf::result<ok_atom> {
      if (id == sample_handle().region)
        return ok_atom::value;
      if (id > error_id_base) {
        auto code = static_cast<gpumem_errc>(id - error_id_base);
        return make_error(code, std::string{"code "} + to_string(code));
      }
      return make_error(gpumem_errc::unknown_region, "no region " + std::to_string(id));
    },
    [=](deallocate_at_atom, std::uint64_t address) -> caf::result<ok_atom> {
      if (address != sample_handle().address)
        return make_error(gpumem_errc::unknown_region, mismatch("address"));
      return ok_atom::value;
    },
    [=](touch_atom, std::uint64_t id) -> caf::result<ok_atom> {
      if (id != sample_handle().region)
        return make_error(gpumem_errc::unknown_region, mismatch("region id"));
      return ok_atom::value;
    },
    [=](batch_allocate_atom,
        const batch_allocation_request& r) -> caf::result<batch_allocation_response> {
      if (!(r == sample_batch()))
        return make_error(gpumem_errc::invalid_config, mismatch("batch_allocation_request"));
      return sample_batch_response();
    },
    [=](batch_deallocate_atom, const batch_deallocation_request& r) -> caf::result<ok_atom> {
      if (!(r == sample_batch_free()))
        return make_error(gpumem_errc::invalid_config, mismatch("batch_deallocation_request"));
      return ok_atom::value;
    },
    [=](sleep_atom, const sleep_policy& p) -> caf::result<transition_report> {
      if (!(p == sample_policy()))
        return make_error(gpumem_errc::invalid_config, mismatch("sleep_policy"));
      return sample_report(transition_kind::sleep);
    },
    [=](wake_atom, const std::vector<std::string>& tags) -> caf::result<transition_report> {
      if (tags != std::vector<std::string>{"weights", "kv_cache"})
        return make_error(gpumem_errc::invalid_config, mismatch("tags"));
      return sample_report(transition_kind::wake);
    },
    [=](prepare_sleep_atom, const sleep_policy& p, std::uint64_t transaction,
        std::uint64_t hold_ms) -> caf::result<transition_report> {
      if (!(p == sample_policy()) || transaction != 42 || hold_ms != 600'000)
        return make_error(gpumem_errc::invalid_config, mismatch("prepare_sleep"));
      return sample_report(transition_kind::sleep);
    },
    [=](prepare_wake_atom, const std::vector<std::string>& tags, std::uint64_t transaction,
        std::uint64_t hold_ms) -> caf::result<transition_report> {
      if (tags != std::vector<std::string>{"weights", "kv_cache"} || transaction != 43
          || hold_ms != 600'000)
        return make_error(gpumem_errc::invalid_config, mismatch("prepare_wake"));
      return sample_report(transition_kind::wake);
    },
    [=](commit_atom, std::uint64_t transaction) -> caf::result<transition_report> {
      if (transaction != 42)
        return make_error(gpumem_errc::invalid_transition, mismatch("commit"));
      return sample_report(transition_kind::sleep);
    },
    [=](abort_atom, std::uint64_t transaction) -> caf::result<ok_atom> {
      if (transaction != 43)
        return make_error(gpumem_errc::invalid_transition, mismatch("abort"));
      return ok_atom::value;
    },
    [=](trim_atom) { return sample_trim(); },
    [=](defragment_atom) { return sample_defragment(); },
    [=](stats_atom) { return sample_statistics(); },
    [=](snapshot_atom) { return sample_snapshot(); },
    [=](info_atom) { return sample_info(); },
    [=](status_atom) { return sample_status(self->state.pressure); },
    [=](const pressure_event& e) {
      if (e == sample_event())
        self->state.pressure = e.level;
    },
  };
}

balancer_actor::behavior_type balancer_stub(balancer_actor::pointer self, spawn_tag) {
  return {
    [=](allocate_atom, const allocation_request& r) -> caf::result<region_handle> {
      if (!(r == sample_request()))
        return make_error(gpumem_errc::invalid_config, mismatch("allocation_request"));
      return sample_handle();
    },
    [=](deallocate_atom, const region_handle& h) -> caf::result<ok_atom> {
      if (!(h == sample_handle()))
        return make_error(gpumem_errc::unknown_region, mismatch("region_handle"));
      return ok_atom::value;
    },
    [=](touch_atom, const region_handle& h) -> caf::result<ok_atom> {
      if (!(h == sample_handle()))
        return make_error(gpumem_errc::unknown_region, mismatch("region_handle"));
      return ok_atom::value;
    },
    [=](batch_allocate_atom,
        const batch_allocation_request& r) -> caf::result<batch_allocation_response> {
      if (!(r == sample_batch()))
        return make_error(gpumem_errc::rolled_back, mismatch("batch_allocation_request"));
      return sample_batch_response();
    },
    [=](batch_deallocate_atom, const batch_deallocation_request& r) -> caf::result<ok_atom> {
      if (!(r == sample_batch_free()))
        return make_error(gpumem_errc::rolled_back, mismatch("batch_deallocation_request"));
      return ok_atom::value;
    },
    [=](sleep_all_atom,
        const sleep_policy& p) -> caf::result<std::vector<transition_report>> {
      if (!(p == sample_policy()))
        return make_error(gpumem_errc::invalid_config, mismatch("sleep_policy"));
      return std::vector{sample_report(transition_kind::sleep, 0),
                         sample_report(transition_kind::sleep, 1)};
    },
    [=](wake_all_atom,
        const std::vector<std::string>& tags) -> caf::result<std::vector<transition_report>> {
      if (!tags.empty())
        return make_error(gpumem_errc::invalid_config, mismatch("tags"));
      return std::vector{sample_report(transition_kind::wake, 0),
                         sample_report(transition_kind::wake, 1)};
    },
    [=](stats_atom) { return sample_cluster_statistics(); },
    [=](add_device_atom, device_allocator_actor device) -> caf::delegated<device_info> {
      return self->delegate(device, info_atom::value);
    },
    [=](remove_device_atom, std::int32_t device) -> caf::result<ok_atom> {
      if (device != 3)
        return make_error(gpumem_errc::unknown_device, "no device " + std::to_string(device));
      return ok_atom::value;
    },
    [=](info_atom) { return std::vector{sample_info(0), sample_info(1)}; },
    [=](status_atom) { return sample_balancer_status(); },
  };
}

struct monitor_state {
  std::vector<pressure_subscriber_actor> subscribers;
  static inline const char* name = "monitor_stub";
};

pressure_monitor_actor::behavior_type
monitor_stub(pressure_monitor_actor::stateful_pointer<monitor_state> self, spawn_tag) {
  return {
    [=](subscribe_atom, pressure_subscriber_actor s) {
      self->state.subscribers.push_back(s);
      self->send(s, sample_event());  // tell the new subscriber at once
      return ok_atom::value;
    },
    [=](subscribe_atom, pressure_subscriber_actor s, std::int32_t device) -> caf::result<ok_atom> {
      if (device != 3 && device != every_device)
        return make_error(gpumem_errc::unknown_device, "no device " + std::to_string(device));
      self->state.subscribers.push_back(s);
      self->send(s, sample_event(device == every_device ? 3 : device));
      return ok_atom::value;
    },
    [=](unsubscribe_atom, const pressure_subscriber_actor& s) -> caf::result<ok_atom> {
      auto& subs = self->state.subscribers;
      for (auto i = subs.begin(); i != subs.end(); ++i)
        if (*i == s) {
          subs.erase(i);
          return ok_atom::value;
        }
      return make_error(gpumem_errc::invalid_config, "not a subscriber");
    },
    [=](pressure_atom) { return std::vector{sample_event(3), sample_event(4)}; },
    [=](status_atom) { return sample_monitor_status(self->state.subscribers.size()); },
  };
}

/// Answers every message with the message itself.
caf::behavior echo(caf::event_based_actor* self, spawn_tag) {
  self->set_default_handler(caf::reflect);
  // A behavior must not be empty (an actor with none terminates at once).
  return {[](caf::ok_atom) { return caf::ok_atom::value; }};
}

/// A subscriber on the client's node: forwards each event to `sink`.
pressure_subscriber_actor::behavior_type forwarder(pressure_subscriber_actor::pointer,
                                                   caf::actor sink) {
  return {[=](const pressure_event& e) { caf::anon_send(sink, e); }};
}

// -- helpers ---------------------------------------------------------------------

struct node_config : caf::actor_system_config {
  node_config() {
    load<caf::io::middleman>();
    register_protocol(*this);
  }
};

/// A request with a finite timeout: the reply, or the error (also a timeout's).
template <class R, class Handle, class... Ts>
caf::expected<R> ask(caf::scoped_actor& self, const Handle& h, Ts&&... xs) {
  caf::expected<R> out{caf::make_error(caf::sec::request_timeout)};
  self->request(h, request_timeout, std::forward<Ts>(xs)...)
    .receive([&](R& r) { out = std::move(r); }, [&](caf::error& e) { out = std::move(e); });
  return out;
}

/// The error a request answered; an empty error when it succeeded.
template <class R, class Handle, class... Ts>
caf::error ask_error(caf::scoped_actor& self, const Handle& h, Ts&&... xs) {
  auto r = ask<R>(self, h, std::forward<Ts>(xs)...);
  return r ? caf::error{} : r.error();
}

/// An actor system that knows the protocol: deserializing a caf::message (an error's
/// context) needs one; without it (nullptr) the context comes back EMPTY, silently.
caf::actor_system& local_system() {
  static caf::actor_system_config cfg = [] {
    caf::actor_system_config c;
    register_protocol(c);
    return c;
  }();
  static caf::actor_system sys{cfg};
  return sys;
}

template <class T>
T binary_round_trip(const T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{local_system(), buf};
  auto copy = x;
  auto err = sink(copy);
  REQUIRE(!err);
  REQUIRE(!buf.empty());
  T y;
  caf::binary_deserializer source{local_system(), buf};
  err = source(y);
  REQUIRE(!err);
  CHECK(source.remaining() == 0);
  return y;
}

template <class T>
void check_binary_round_trip(const T& x) {
  INFO(caf::deep_to_string(x));
  CHECK(binary_round_trip(x) == x);
  // The default value too, and a vector of both.
  CHECK(binary_round_trip(T{}) == T{});
  // No message carries a std::vector of an enum: CAF 0.17.6's loader for one trips
  // g++ 12's -Wmaybe-uninitialized (a false positive inside CAF's headers).
  if constexpr (!std::is_enum_v<T>) {
    std::vector<T> xs{x, T{}, x};
    CHECK(binary_round_trip(xs) == xs);
  }
}

template <class T>
void check_echo(caf::scoped_actor& self, const caf::actor& echo, const T& x) {
  INFO(caf::deep_to_string(x));
  auto r = ask<T>(self, echo, x);
  REQUIRE(r);
  CHECK(*r == x);
  if constexpr (!std::is_enum_v<T>) {  // see check_binary_round_trip
    std::vector<T> xs{x, T{}, x};       // every T travels in vectors as well
    auto rs = ask<std::vector<T>>(self, echo, xs);
    REQUIRE(rs);
    CHECK(*rs == xs);
  }
}

/// Every value type, with `f` applied to a sample of each.
template <class F>
void for_each_sample(F&& f) {
  f(strategy::first_fit);
  f(device_state::waking);
  f(transition_kind::wake);
  f(pressure_level::critical);
  f(sample_handle());
  f(sample_request());
  f(sample_batch());
  f(sample_batch_response());
  f(sample_batch_free());
  f(sample_policy());
  f(sleep_policy::at_level(2, {"kv_cache"}));
  f(sample_report(transition_kind::wake));
  f(sample_trim());
  f(sample_defragment());
  f(sample_stat(5));
  f(sample_grid(7));
  f(tag_stat_grid{"weights", sample_grid(3)});
  f(sample_statistics());
  f(sample_cluster_statistics());
  f(sample_snapshot());
  f(sample_info());
  f(sample_event());
  f(sample_status());
  f(sample_balancer_status());
  f(sample_monitor_status(2));
  f(sample_node_info());
}

} // namespace

TEST_CASE("every value type survives CAF's binary serializer", "[messages]") {
  for_each_sample([](const auto& x) { check_binary_round_trip(x); });
}

// CAF 0.17.6's serializer loops forever on an infinite double, and its deserializer
// reads the largest exponent as infinity: a peer's bytes once made the next
// serialization of a defragment_report hang (found by tests/fuzz/message_deserializer).
TEST_CASE("a value with an infinite or NaN double is refused when written and when read",
          "[messages]") {
  std::vector<char> buf;
  caf::binary_serializer sink{local_system(), buf};
  defragment_report report{.device = 1, .fragmentation_before = 0.5};
  REQUIRE(!sink(report));
  // fragmentation_after, the last field: its exponent bits all set.
  REQUIRE(buf.size() >= 8);
  std::uint64_t infinity = 0x7ff0000000000000;
  for (int i = 0; i < 8; ++i)
    buf[buf.size() - 8 + i] = static_cast<char>(infinity >> (8 * (7 - i)));
  defragment_report read;
  caf::binary_deserializer source{local_system(), buf};
  auto err = source(read);
  CHECK(gpumem_code(err) == gpumem_errc::invalid_config);
  CHECK(error_message(err) == "defragment_report.fragmentation_after is not a finite number");

  report.fragmentation_after = std::numeric_limits<double>::infinity();
  std::vector<char> out;
  caf::binary_serializer refusing{local_system(), out};
  err = refusing(report);
  CHECK(gpumem_code(err) == gpumem_errc::invalid_config);
  device_status status;
  status.max_response_ms = std::numeric_limits<double>::quiet_NaN();
  err = refusing(status);
  CHECK(error_message(err) == "device_status.max_response_ms is not a finite number");
}

TEST_CASE("duration buckets that cannot be a histogram are refused when written and read; "
          "buckets add only over the same bounds", "[messages]") {
  duration_buckets good{{0.01, 0.1}, {1, 2, 3}};
  CHECK(good.check() == caf::none);
  CHECK(duration_buckets{}.check() == caf::none);
  for (const auto& bad : {duration_buckets{{0.01, 0.1}, {1, 2}},
                          duration_buckets{{0.1, 0.01}, {1, 2, 3}},
                          duration_buckets{{0.01, std::numeric_limits<double>::infinity()}, {1, 2, 3}},
                          duration_buckets{{0.01}, {}}}) {
    std::vector<char> buf;
    caf::binary_serializer sink{local_system(), buf};
    auto err = sink(bad);
    CHECK(gpumem_code(err) == gpumem_errc::invalid_config);
  }
  // Read: good buckets written, then their counts cut to as many as the bounds.
  std::vector<char> buf;
  caf::binary_serializer sink{local_system(), buf};
  REQUIRE(!sink(std::vector<double>{0.01, 0.1}));
  REQUIRE(!sink(std::vector<std::uint64_t>{1, 2}));
  duration_buckets read;
  caf::binary_deserializer source{local_system(), buf};
  CHECK(gpumem_code(source(read)) == gpumem_errc::invalid_config);

  auto sum = good;
  CHECK(sum.add(good) == caf::none);
  CHECK(sum.counts == std::vector<std::uint64_t>{2, 4, 6});
  duration_buckets empty;
  CHECK(empty.add(good) == caf::none);
  CHECK(empty == good);
  CHECK(sum.add(duration_buckets{}) == caf::none);
  CHECK(sum.counts == std::vector<std::uint64_t>{2, 4, 6});
  CHECK(gpumem_code(sum.add(duration_buckets{{0.5}, {1, 1}})) == gpumem_errc::invalid_config);
}

TEST_CASE("gpumem_errc: names, make_error, category and message", "[messages]") {
  for (int i = 1; i <= static_cast<int>(last_errc); ++i) {
    auto code = static_cast<gpumem_errc>(i);
    INFO(i);
    CHECK(std::string{to_string(code)} != "unknown");
    CHECK(from_string(to_string(code)) == code);
    auto e = make_error(code, "the figures");
    CHECK(e == code);
    CHECK(e.category() == error_category);
    CHECK(gpumem_code(e) == code);
    CHECK(error_message(e) == "the figures");
    CHECK(render_error(e.code(), e.category(), e.context())
          == std::string{to_string(code)} + ": the figures");
    caf::error bare = code;  // the one-argument make_error, as handlers return it
    CHECK(bare == code);
    CHECK(error_message(bare).empty());
  }
  CHECK_FALSE(from_string("no_such_error"));
  CHECK(std::string{to_string(gpumem_errc::out_of_memory)} == "out_of_memory");
  CHECK(static_cast<int>(gpumem_errc::device_failure) == 14);  // core::engine_errc's value
  CHECK_FALSE(gpumem_code(caf::make_error(caf::sec::request_timeout)));
  CHECK_FALSE(gpumem_code(caf::error{}));

  // The error itself survives the serializer with its context.
  auto e = binary_round_trip(make_error(gpumem_errc::tag_asleep, "kv_cache sleeps"));
  CHECK(e == gpumem_errc::tag_asleep);
  CHECK(error_message(e) == "kv_cache sleeps");
}

TEST_CASE("every message crosses the wire between two actor systems", "[messages][network]") {
  // Node A: the published actors. Exits them on the way out, even after a failed
  // REQUIRE, so that ~actor_system does not wait forever.
  struct server_node {
    node_config cfg;
    caf::actor_system sys{cfg};
    caf::actor echo_actor = sys.spawn(echo, spawn_tag{});
    device_allocator_actor allocator = sys.spawn(allocator_stub, spawn_tag{});
    balancer_actor balancer = sys.spawn(balancer_stub, spawn_tag{});
    pressure_monitor_actor monitor = sys.spawn(monitor_stub, spawn_tag{});
    ~server_node() {
      caf::anon_send_exit(echo_actor, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(allocator, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(balancer, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(monitor, caf::exit_reason::user_shutdown);
    }
  } a;
  auto publish = [&](const auto& handle) {
    auto port = a.sys.middleman().publish(handle, 0, "127.0.0.1");
    REQUIRE(port);
    REQUIRE(*port != 0);
    return *port;
  };
  auto echo_port = publish(a.echo_actor);
  auto allocator_port = publish(a.allocator);
  auto balancer_port = publish(a.balancer);
  auto monitor_port = publish(a.monitor);

  // Node B: the client.
  struct client_node {
    node_config cfg;
    caf::actor_system sys{cfg};
    pressure_subscriber_actor subscriber;
    ~client_node() { caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown); }
  } b;
  caf::scoped_actor self{b.sys};
  auto& mm = b.sys.middleman();
  auto echo_proxy = mm.remote_actor("127.0.0.1", echo_port);
  REQUIRE(echo_proxy);
  // remote_actor<T> also checks that both nodes agree on the interface.
  auto allocator = mm.remote_actor<device_allocator_actor>("127.0.0.1", allocator_port);
  REQUIRE(allocator);
  auto balancer = mm.remote_actor<balancer_actor>("127.0.0.1", balancer_port);
  REQUIRE(balancer);
  auto monitor = mm.remote_actor<pressure_monitor_actor>("127.0.0.1", monitor_port);
  REQUIRE(monitor);

  SECTION("every value type, alone and in a vector, comes back intact from an echo") {
    for_each_sample([&](const auto& x) { check_echo(self, *echo_proxy, x); });
    // And with an atom in front, as requests carry them.
    auto r = ask<region_handle>(self, *echo_proxy, allocate_atom::value, sample_handle());
    CHECK_FALSE(r);  // the reply is (atom, handle), not a handle alone
    caf::message reply;
    self->request(*echo_proxy, request_timeout, allocate_atom::value, sample_request())
      .receive([&](allocate_atom, allocation_request& x) { reply = caf::make_message(x); },
               [&](caf::error& e) { FAIL(b.sys.render(e)); });
    REQUIRE(reply.match_element<allocation_request>(0));
    CHECK(reply.get_as<allocation_request>(0) == sample_request());
  }

  SECTION("device_allocator_actor: every handler") {
    auto& dev = *allocator;
    auto h = ask<region_handle>(self, dev, allocate_atom::value, sample_request());
    REQUIRE(h);
    CHECK(*h == sample_handle());
    CHECK(ask<ok_atom>(self, dev, deallocate_atom::value, sample_handle().region));
    CHECK(ask<ok_atom>(self, dev, deallocate_at_atom::value, sample_handle().address));
    CHECK(ask<ok_atom>(self, dev, touch_atom::value, sample_handle().region));
    auto batch = ask<batch_allocation_response>(self, dev, batch_allocate_atom::value,
                                                sample_batch());
    REQUIRE(batch);
    CHECK(*batch == sample_batch_response());
    CHECK(ask<ok_atom>(self, dev, batch_deallocate_atom::value, sample_batch_free()));
    auto slept = ask<transition_report>(self, dev, sleep_atom::value, sample_policy());
    REQUIRE(slept);
    CHECK(*slept == sample_report(transition_kind::sleep));
    auto woke = ask<transition_report>(self, dev, wake_atom::value,
                                       std::vector<std::string>{"weights", "kv_cache"});
    REQUIRE(woke);
    CHECK(*woke == sample_report(transition_kind::wake));
    auto prepared = ask<transition_report>(self, dev, prepare_sleep_atom::value, sample_policy(),
                                           std::uint64_t{42}, std::uint64_t{600'000});
    REQUIRE(prepared);
    CHECK(*prepared == sample_report(transition_kind::sleep));
    prepared = ask<transition_report>(self, dev, prepare_wake_atom::value,
                                      std::vector<std::string>{"weights", "kv_cache"},
                                      std::uint64_t{43}, std::uint64_t{600'000});
    REQUIRE(prepared);
    CHECK(*prepared == sample_report(transition_kind::wake));
    auto committed = ask<transition_report>(self, dev, commit_atom::value, std::uint64_t{42});
    REQUIRE(committed);
    CHECK(*committed == sample_report(transition_kind::sleep));
    CHECK(ask<ok_atom>(self, dev, abort_atom::value, std::uint64_t{43}));
    auto trimmed = ask<trim_report>(self, dev, trim_atom::value);
    REQUIRE(trimmed);
    CHECK(*trimmed == sample_trim());
    auto defragmented = ask<defragment_report>(self, dev, defragment_atom::value);
    REQUIRE(defragmented);
    CHECK(*defragmented == sample_defragment());
    auto stats = ask<statistics>(self, dev, stats_atom::value);
    REQUIRE(stats);
    CHECK(*stats == sample_statistics());
    auto snap = ask<memory_snapshot>(self, dev, snapshot_atom::value);
    REQUIRE(snap);
    CHECK(*snap == sample_snapshot());
    auto info = ask<device_info>(self, dev, info_atom::value);
    REQUIRE(info);
    CHECK(*info == sample_info());
    auto status = ask<device_status>(self, dev, status_atom::value);
    REQUIRE(status);
    CHECK(*status == sample_status(pressure_level::normal));

    // As a pressure subscriber: an allocator handle narrows to the subscriber interface.
    pressure_subscriber_actor as_subscriber = dev;
    self->send(as_subscriber, sample_event());
    status = ask<device_status>(self, dev, status_atom::value);  // ordered after the event
    REQUIRE(status);
    CHECK(status->pressure == pressure_level::critical);
  }

  SECTION("errors arrive with their code, category and message") {
    auto& dev = *allocator;
    auto request = sample_request();
    request.size = huge_size;
    auto err = ask_error<region_handle>(self, dev, allocate_atom::value, request);
    REQUIRE(err);
    CHECK(err == gpumem_errc::out_of_memory);
    CHECK(err.code() == static_cast<std::uint8_t>(gpumem_errc::out_of_memory));
    CHECK(err.category() == error_category);
    CHECK(error_message(err) == oom_text);
    CHECK(gpumem_code(err) == gpumem_errc::out_of_memory);
    auto rendered = b.sys.render(err);
    INFO(rendered);
    CHECK(rendered.find("out_of_memory: " + oom_text) != std::string::npos);

    for (int i = 1; i <= static_cast<int>(last_errc); ++i) {
      auto code = static_cast<gpumem_errc>(i);
      INFO(to_string(code));
      auto e = ask_error<ok_atom>(self, dev, deallocate_atom::value, error_id_base + i);
      CHECK(e == code);
      CHECK(e.category() == error_category);
      CHECK(error_message(e) == std::string{"code "} + to_string(code));
    }
  }

  SECTION("balancer_actor: every handler") {
    auto& bal = *balancer;
    auto h = ask<region_handle>(self, bal, allocate_atom::value, sample_request());
    REQUIRE(h);
    CHECK(*h == sample_handle());
    CHECK(ask<ok_atom>(self, bal, deallocate_atom::value, sample_handle()));
    CHECK(ask<ok_atom>(self, bal, touch_atom::value, sample_handle()));
    auto batch = ask<batch_allocation_response>(self, bal, batch_allocate_atom::value,
                                                sample_batch());
    REQUIRE(batch);
    CHECK(*batch == sample_batch_response());
    CHECK(ask<ok_atom>(self, bal, batch_deallocate_atom::value, sample_batch_free()));
    auto slept = ask<std::vector<transition_report>>(self, bal, sleep_all_atom::value,
                                                     sample_policy());
    REQUIRE(slept);
    CHECK(*slept == std::vector{sample_report(transition_kind::sleep, 0),
                                sample_report(transition_kind::sleep, 1)});
    auto woke = ask<std::vector<transition_report>>(self, bal, wake_all_atom::value,
                                                    std::vector<std::string>{});
    REQUIRE(woke);
    CHECK(*woke == std::vector{sample_report(transition_kind::wake, 0),
                               sample_report(transition_kind::wake, 1)});
    auto stats = ask<cluster_statistics>(self, bal, stats_atom::value);
    REQUIRE(stats);
    CHECK(*stats == sample_cluster_statistics());
    // An allocator handle travels to the balancer, which asks it for its info.
    auto added = ask<device_info>(self, bal, add_device_atom::value, *allocator);
    REQUIRE(added);
    CHECK(*added == sample_info());
    CHECK(ask<ok_atom>(self, bal, remove_device_atom::value, std::int32_t{3}));
    auto err = ask_error<ok_atom>(self, bal, remove_device_atom::value, std::int32_t{9});
    CHECK(err == gpumem_errc::unknown_device);
    CHECK(error_message(err) == "no device 9");
    auto infos = ask<std::vector<device_info>>(self, bal, info_atom::value);
    REQUIRE(infos);
    CHECK(*infos == std::vector{sample_info(0), sample_info(1)});
    auto status = ask<balancer_status>(self, bal, status_atom::value);
    REQUIRE(status);
    CHECK(*status == sample_balancer_status());
  }

  SECTION("pressure_monitor_actor and a subscriber on the client's node") {
    auto& mon = *monitor;
    b.subscriber = b.sys.spawn(forwarder, caf::actor_cast<caf::actor>(self));
    CHECK(ask<ok_atom>(self, mon, subscribe_atom::value, b.subscriber));
    std::optional<pressure_event> event;
    self->receive([&](pressure_event& e) { event = e; },
                  caf::after(request_timeout) >> [] {});
    REQUIRE(event);
    CHECK(*event == sample_event());
    auto status = ask<pressure_monitor_status>(self, mon, status_atom::value);
    REQUIRE(status);
    CHECK(*status == sample_monitor_status(1));
    auto levels = ask<std::vector<pressure_event>>(self, mon, pressure_atom::value);
    REQUIRE(levels);
    CHECK(*levels == std::vector{sample_event(3), sample_event(4)});
    CHECK(ask<ok_atom>(self, mon, unsubscribe_atom::value, b.subscriber));
    status = ask<pressure_monitor_status>(self, mon, status_atom::value);
    REQUIRE(status);
    CHECK(status->subscribers == 0);

    // One device's events: the device number travels, and so does a refusal.
    CHECK(ask<ok_atom>(self, mon, subscribe_atom::value, b.subscriber, std::int32_t{3}));
    event.reset();
    self->receive([&](pressure_event& e) { event = e; },
                  caf::after(request_timeout) >> [] {});
    REQUIRE(event);
    CHECK(*event == sample_event(3));
    auto refused = ask_error<ok_atom>(self, mon, subscribe_atom::value, b.subscriber,
                                      std::int32_t{9});
    CHECK(refused == gpumem_errc::unknown_device);
    CHECK(error_message(refused) == "no device 9");
    CHECK(ask<ok_atom>(self, mon, unsubscribe_atom::value, b.subscriber));
  }
}
