// Every error the control plane answers: the status, the JSON {"error", "message"}, and
// that nothing changed (the runtime's statistics and sleep state are as before).

#include <catch2/catch.hpp>

#include <caf/scoped_actor.hpp>

#include "control/http_client.hpp"
#include "control/served_runtime.hpp"
#include "gpumem/cuda/host_backend.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;
using test::http_call;
using test::http_get;
using test::http_post;
namespace http = boost::beast::http;

/// Checks the answer is the error `code` with `status` and a message.
void refused(const test::http_answer& a, unsigned status, const std::string& code) {
  INFO(a.body);
  CHECK(a.status == status);
  CHECK(a.content_type == "application/json");
  auto doc = a.json();
  CHECK(doc.value("error", "") == code);
  CHECK_FALSE(doc.value("message", "").empty());
}

/// What must not change: every device's statistics and whether anything sleeps.
struct state_of {
  messages::cluster_statistics stats;
  bool sleeping = false;
  explicit state_of(test::served_runtime& s) {
    auto st = s.direct().statistics();
    auto sl = s.direct().is_sleeping();
    REQUIRE(st.ok());
    REQUIRE(sl.ok());
    stats = *st;
    sleeping = *sl;
  }
  bool operator==(const state_of&) const = default;
};

} // namespace

TEST_CASE("control: bad requests are refused and change nothing", "[control][errors]") {
  test::served_runtime s;
  REQUIRE(s.direct().allocate({4 * MiB, "weights"}).ok());
  REQUIRE(s.direct().allocate({2 * MiB, "kv_cache"}).ok());
  const auto port = s.port();
  const state_of before{s};

  refused(http_get(port, "/no/such/route"), 404, "not_found");
  auto wrong = http_get(port, "/sleep");
  refused(wrong, 405, "method_not_allowed");
  CHECK(wrong.allow == "POST");
  CHECK(http_post(port, "/metrics").allow == "GET");
  refused(http_call(port, http::verb::delete_, "/v1/status"), 405, "method_not_allowed");

  refused(http_post(port, "/sleep?level=3"), 400, "bad_parameter");
  refused(http_post(port, "/sleep?level=-1"), 400, "bad_parameter");
  refused(http_post(port, "/sleep?level=one"), 400, "bad_parameter");
  refused(http_post(port, "/sleep?level="), 400, "bad_parameter");
  refused(http_post(port, "/sleep?level=1&level=2"), 400, "bad_parameter");
  refused(http_post(port, "/sleep?levle=1"), 400, "unknown_parameter");
  refused(http_post(port, "/sleep?tags=weights&tags="), 400, "bad_parameter");
  refused(http_post(port, "/sleep?tags=no_such_tag"), 400, "unknown_tag");
  refused(http_post(port, "/sleep?tags=%zz"), 400, "bad_parameter");
  refused(http_post(port, "/wake_up?tags=no_such_tag"), 400, "unknown_tag");
  refused(http_post(port, "/wake_up?level=1"), 400, "unknown_parameter");
  refused(http_get(port, "/is_sleeping?tags=weights"), 400, "unknown_parameter");

  for (const char* body : {"{\"tags\": [\"weights\"", "[\"weights\"]", "{\"tags\": \"weights\"}",
                           "{\"tags\": [1]}", "{\"tag\": [\"weights\"]}", "{\"tags\": [\"\"]}"}) {
    INFO(body);
    auto a = http_post(port, "/release_memory_occupation", body);
    CHECK(a.status == 400);
    CHECK((a.error() == "bad_json" || a.error() == "bad_parameter"));
  }
  refused(http_post(port, "/resume_memory_occupation", "not json"), 400, "bad_json");
  refused(http_post(port, "/release_memory_occupation", R"({"tags": ["nope"]})"), 400,
          "unknown_tag");

  refused(http_get(port, "/v1/snapshot"), 400, "bad_parameter");
  refused(http_get(port, "/v1/snapshot?device=2"), 400, "unknown_device");
  refused(http_get(port, "/v1/snapshot?device=x"), 400, "bad_parameter");
  refused(http_post(port, "/v1/trim?device=9"), 400, "unknown_device");
  refused(http_post(port, "/v1/defragment?device=-1"), 400, "bad_parameter");

  // A body past gpumem.control.body-limit (64 KiB) is not read.
  std::string big = R"({"tags": [")" + std::string(100 * 1024, 'w') + R"("]})";
  auto too_large = http_post(port, "/release_memory_occupation", big);
  refused(too_large, 413, "body_too_large");
  CHECK_FALSE(too_large.keep_alive);

  CHECK(state_of{s} == before);
  CHECK_FALSE(before.sleeping);
}

TEST_CASE("control: malformed HTTP is answered 400 or 431 and the connection closed",
          "[control][errors]") {
  test::served_runtime s;
  test::raw_connection garbage{s.port()};
  garbage.send("this is not HTTP\r\n\r\n");
  CHECK(garbage.closed_within(test::wait_limit));
  CHECK(garbage.received().find("400 Bad Request") != std::string::npos);
  CHECK(garbage.received().find("\"bad_request\"") != std::string::npos);

  test::raw_connection huge{s.port()};
  huge.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'a')
            + "\r\n\r\n");
  CHECK(huge.closed_within(test::wait_limit));
  CHECK(huge.received().find("431") != std::string::npos);
  CHECK(huge.received().find("header_too_large") != std::string::npos);
}

TEST_CASE("control: a body sent after 100 Continue, as curl does", "[control]") {
  test::served_runtime s;
  REQUIRE(s.direct().allocate({2 * MiB, "kv_cache"}).ok());
  const std::string body = R"({"tags": ["kv_cache"]})";
  test::raw_connection c{s.port()};
  c.send("POST /release_memory_occupation HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
         "Content-Type: application/json\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n\r\n");
  REQUIRE(c.received_within("100 Continue\r\n\r\n", test::wait_limit));
  c.send(body);
  CHECK(c.received_within("\"bytes_discarded\":2097152", test::wait_limit));
}

TEST_CASE("control: 409 when tags sleep already or a transition runs", "[control][errors]") {
  test::served_runtime s;
  REQUIRE(s.direct().allocate({4 * MiB, "weights", messages::strategy::configured, 0, 0}).ok());
  const auto port = s.port();

  REQUIRE(http_post(port, "/sleep?level=1").status == 200);
  refused(http_post(port, "/sleep?level=1"), 409, "already_asleep");
  refused(http_post(port, "/sleep?tags=weights"), 409, "already_asleep");
  refused(http_post(port, "/release_memory_occupation"), 409, "already_asleep");
  REQUIRE(http_post(port, "/wake_up").status == 200);

  // Device 0 held in phase one of a collective sleep (another client's): no sleep or
  // wake starts over HTTP until it ends.
  caf::scoped_actor self{s.fx.sys};
  const std::uint64_t transaction = 777;
  self->request(s.fx.rt->allocators()[0], caf::infinite, messages::prepare_sleep_atom::value,
                messages::sleep_policy::at_level(1), transaction, std::uint64_t{60000})
    .receive([](messages::transition_report&) {},
             [](caf::error& e) { FAIL("prepare_sleep: " << caf::to_string(e)); });
  const state_of held{s};
  refused(http_post(port, "/sleep?level=2"), 409, "transition_in_progress");
  refused(http_post(port, "/wake_up"), 409, "transition_in_progress");
  refused(http_post(port, "/resume_memory_occupation"), 409, "transition_in_progress");
  CHECK(state_of{s} == held);
  self->request(s.fx.rt->allocators()[0], caf::infinite, messages::abort_atom::value, transaction)
    .receive([](messages::ok_atom) {},
             [](caf::error& e) { FAIL("abort: " << caf::to_string(e)); });
  REQUIRE(http_post(port, "/sleep?level=2").status == 200);
}

TEST_CASE("control: 507 when a wake finds too little memory; the tags stay asleep",
          "[control][errors]") {
  test::served_runtime s;
  auto weights = s.direct().allocate({64 * MiB, "weights", messages::strategy::configured, 0, 0});
  REQUIRE(weights.ok());
  test::fill_pattern(weights->address, weights->requested, 9);
  const auto port = s.port();
  REQUIRE(http_post(port, "/sleep?level=1&tags=weights").status == 200);

  // A trainer borrows device 0 meanwhile (below the pressure warning, so that no
  // pressure response changes the statistics).
  auto trainer = s.direct().allocate({200 * MiB, "trainer", messages::strategy::configured, 0, 0});
  REQUIRE(trainer.ok());
  const state_of before{s};
  refused(http_post(port, "/wake_up?tags=weights"), 507, "insufficient_memory");
  CHECK(state_of{s} == before);
  CHECK(before.sleeping);

  REQUIRE(s.direct().deallocate(*trainer).ok());
  REQUIRE(http_post(port, "/wake_up?tags=weights").status == 200);
  CHECK(test::has_pattern(weights->address, weights->requested, 9));
}

TEST_CASE("control: 503 when a device fails or the runtime does not answer",
          "[control][errors]") {
  SECTION("a copy fails during a sleep: every device is as it was") {
    test::served_runtime s;
    auto weights = s.direct().allocate({8 * MiB, "weights"});
    REQUIRE(weights.ok());
    test::fill_pattern(weights->address, weights->requested, 5);
    auto& host = dynamic_cast<cuda::host_backend&>(s.fx.rt->backend());
    host.inject_fault(cuda::fault_point::copy, 1, cuda::error_code::unknown);
    refused(http_post(s.port(), "/sleep?level=1"), 503, "device_failure");
    auto sleeping = s.direct().is_sleeping();
    REQUIRE(sleeping.ok());
    CHECK_FALSE(*sleeping);
    CHECK(test::has_pattern(weights->address, weights->requested, 5));
    CHECK(http_get(s.port(), "/healthz").status == 200);
  }
  SECTION("a sticky error loses the device: health says so") {
    test::served_runtime s;
    REQUIRE(s.direct().allocate({8 * MiB, "weights", messages::strategy::configured, 0, 1}).ok());
    auto& host = dynamic_cast<cuda::host_backend&>(s.fx.rt->backend());
    host.inject_fault(cuda::fault_point::copy, 1, cuda::error_code::illegal_address);
    refused(http_post(s.port(), "/sleep?level=1"), 503, "device_failure");
    auto health = http_get(s.port(), "/healthz");
    refused(health, 503, "device_failure");
    CHECK(health.json()["message"].get<std::string>().find("device 1 is lost") != std::string::npos);
  }
  SECTION("a runtime that never answers: timeout") {
    test::served_runtime s{[](test::client_fixture& fx) { return fx.silent_endpoint(); },
                           test::test_server_options()};
    refused(http_get(s.port(), "/healthz"), 503, "timeout");
    refused(http_get(s.port(), "/v1/status"), 503, "timeout");
    refused(http_post(s.port(), "/sleep"), 503, "timeout");
    refused(http_get(s.port(), "/metrics"), 503, "timeout");
  }
}
