// A slow or stalled client cannot hold the control plane: read and write timeouts cut
// it off, the connection limit answers one more with 503, and stop() closes what is
// open. No test asserts on time: each waits, bounded, for what must happen.

#include <catch2/catch.hpp>

#include "control/http_client.hpp"
#include "control/served_runtime.hpp"

namespace {

using namespace gpumem;
using namespace std::chrono_literals;
using test::http_get;

control::server_options with_timeouts(std::chrono::milliseconds read, std::chrono::milliseconds write,
                                      int connections = 64) {
  auto o = test::test_server_options();
  o.read_timeout = read;
  o.write_timeout = write;
  o.max_connections = connections;
  return o;
}

} // namespace

TEST_CASE("control: a stalled request is cut off at the read timeout; others are served",
          "[control][limits]") {
  test::served_runtime s{with_timeouts(300ms, 10s)};
  test::raw_connection half_header{s.port()};
  half_header.send("GET /healthz HTTP/1.1\r\nHost: x");
  test::raw_connection no_body{s.port()};
  no_body.send("POST /release_memory_occupation HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{");

  CHECK(http_get(s.port(), "/healthz").status == 200);  // while both stall

  CHECK(half_header.closed_within(test::wait_limit));
  CHECK(half_header.received().empty());
  CHECK(no_body.closed_within(test::wait_limit));
  CHECK(no_body.received().empty());
  auto sleeping = s.direct().is_sleeping();
  REQUIRE(sleeping.ok());
  CHECK_FALSE(*sleeping);  // the half-read release did nothing

  // An idle kept-alive connection is closed after the same time.
  test::raw_connection idle{s.port()};
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(idle.received_within("\"status\":\"ok\"", test::wait_limit));
  CHECK(idle.closed_within(test::wait_limit));
}

TEST_CASE("control: one connection past the limit is answered 503; a slot frees when one ends",
          "[control][limits]") {
  test::served_runtime s{with_timeouts(60s, 10s, 2)};
  test::raw_connection first{s.port()}, second{s.port()};
  first.send("GET /healthz HTTP/1.1\r\n");
  second.send("GET /healthz HTTP/1.1\r\n");

  // Accepted in order: these two hold the slots, the third is refused.
  test::raw_connection third{s.port()};
  CHECK(third.closed_within(test::wait_limit));
  CHECK(third.received().find("503 Service Unavailable") != std::string::npos);
  CHECK(third.received().find("too_many_connections") != std::string::npos);
  auto refused = http_get(s.port(), "/healthz");
  CHECK(refused.status == 503);
  CHECK(refused.error() == "too_many_connections");

  first.send("Host: x\r\nConnection: close\r\n\r\n");  // completes its request
  CHECK(first.closed_within(test::wait_limit));
  CHECK(first.received().find("200 OK") != std::string::npos);
  test::wait_until("a free connection slot",
                   [&] { return http_get(s.port(), "/healthz").status == 200; });
}

TEST_CASE("control: a client that reads no answers is cut off at the write timeout",
          "[control][limits]") {
  // Only the write timeout can free the slot within the wait: reads may take an hour.
  test::served_runtime s{with_timeouts(3600s, 300ms, 1)};
  // Snapshots of a device with many regions: far more than the sockets buffer.
  std::vector<client::allocation_spec> many(4000, client::allocation_spec{4096, "kv_cache",
                                                                          messages::strategy::configured, 0, 0});
  REQUIRE(s.direct().allocate_batch(many).ok());
  test::raw_connection hog{s.port()};
  std::string requests;
  for (int i = 0; i < 40; ++i)
    requests += "GET /v1/snapshot?device=0 HTTP/1.1\r\nHost: x\r\n\r\n";
  hog.send(requests);

  // It holds the only slot until its write times out.
  test::wait_until("the stalled reader to be cut off",
                   [&] { return http_get(s.port(), "/healthz").status == 200; });
  CHECK(hog.closed_within(test::wait_limit));
}

TEST_CASE("control: stop closes open connections and the io_context runs out of work",
          "[control][limits]") {
  test::served_runtime s{with_timeouts(60s, 60s)};
  test::raw_connection idle{s.port()};
  idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(idle.received_within("\"status\":\"ok\"", test::wait_limit));
  test::raw_connection stalled{s.port()};
  stalled.send("GET /heal");
  CHECK(s.stop());  // the io_context ran out of work
  CHECK(idle.closed_within(test::wait_limit));
  CHECK(stalled.closed_within(test::wait_limit));
}
