// The deadline table the balancer keeps instead of one CAF clock entry per request.

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "gpumem/actors/deadline_table.hpp"

using gpumem::actors::deadline_table;
using namespace std::chrono_literals;

TEST_CASE("deadline_table: settled entries never expire; overdue ones do, once",
          "[actors][deadlines]") {
  deadline_table table;
  const auto t0 = deadline_table::clock::time_point{} + 1h;
  std::vector<int> expired;
  auto a = table.add(t0 + 1s, [&] { expired.push_back(1); });
  auto b = table.add(t0 + 2s, [&] { expired.push_back(2); });
  auto c = table.add(t0 + 3s, [&] { expired.push_back(3); });
  CHECK(table.open() == 3);

  CHECK(table.settle(b));       // on time
  CHECK_FALSE(table.settle(b)); // a second reply for the same ticket
  CHECK(table.expire(t0) == 0);
  CHECK(table.expire(t0 + 2500ms) == 1);  // a; b was settled
  CHECK(expired == std::vector<int>{1});
  CHECK_FALSE(table.settle(a));  // a's reply comes late
  CHECK(table.open() == 1);

  CHECK(table.expire(t0 + 10s) == 1);
  CHECK(expired == std::vector<int>{1, 3});
  CHECK_FALSE(table.settle(c));
  CHECK(table.open() == 0);
  CHECK(table.expire(t0 + 20s) == 0);
}

TEST_CASE("deadline_table: an expiry may add entries; tickets stay valid",
          "[actors][deadlines]") {
  deadline_table table;
  const auto t0 = deadline_table::clock::time_point{} + 1h;
  deadline_table::ticket again = 0;
  int fired = 0;
  table.add(t0, [&] {
    ++fired;
    again = table.add(t0 + 5s, [&] { ++fired; });
  });
  auto later = table.add(t0 + 1s, [&] { ++fired; });
  CHECK(table.expire(t0) == 1);
  CHECK(fired == 1);
  CHECK(table.open() == 2);
  CHECK(table.settle(later));
  CHECK(table.settle(again));
  CHECK(table.open() == 0);
  CHECK_FALSE(table.settle(12345));  // never issued
  CHECK(table.expire(t0 + 1h) == 0);
  CHECK(fired == 1);
}

TEST_CASE("deadline_table: expire_all fails every open entry, due or not",
          "[actors][deadlines]") {
  deadline_table table;
  const auto t0 = deadline_table::clock::time_point{} + 1h;
  int fired = 0;
  table.add(t0 + 1h, [&] { ++fired; });
  auto settled = table.add(t0 + 2h, [&] { ++fired; });
  table.add(t0 + 3h, [&] { ++fired; });
  CHECK(table.settle(settled));
  CHECK(table.expire_all() == 2);
  CHECK(fired == 2);
  CHECK(table.open() == 0);
}
