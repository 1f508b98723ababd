// The control plane's routes through Beast's own client against a served runtime: a
// sleep or wake over HTTP is the runtime's transition (the weights' bytes come back at
// their addresses), its answer carries the report, and every /v1 route answers what the
// runtime holds.

#include <catch2/catch.hpp>

#include "control/http_client.hpp"
#include "control/served_runtime.hpp"

namespace {

using namespace gpumem;
using test::http_get;
using test::http_post;

/// Weights on device 0 with a known pattern, a KV cache on device 1.
struct loaded {
  messages::region_handle weights, kv;
};

loaded load(test::served_runtime& s) {
  auto w = s.direct().allocate({6 * MiB + 4096, "weights", messages::strategy::configured, 0, 0});
  auto kv = s.direct().allocate({4 * MiB, "kv_cache", messages::strategy::configured, 0, 1});
  REQUIRE(w.ok());
  REQUIRE(kv.ok());
  test::fill_pattern(w->address, w->requested, 42);
  return {*w, *kv};
}

bool sleeping(std::uint16_t port) {
  auto a = http_get(port, "/is_sleeping");
  REQUIRE(a.status == 200);
  return a.json().at("is_sleeping").get<bool>();
}

} // namespace

TEST_CASE("control: vLLM's sleep and wake keep the weights' bytes and report what moved",
          "[control][sleep]") {
  test::served_runtime s;
  auto mem = load(s);
  const auto port = s.port();
  CHECK_FALSE(sleeping(port));

  auto slept = http_post(port, "/sleep?level=1");
  REQUIRE(slept.status == 200);
  CHECK(slept.content_type == "application/json");
  auto report = slept.json();
  CHECK(report["level"] == 1);
  CHECK(report["tags"] == nlohmann::json{"kv_cache", "weights"});
  CHECK(report["bytes_backed_up"] == mem.weights.requested);
  CHECK(report["bytes_discarded"] == mem.kv.requested);
  CHECK(report["bytes_released"].get<std::uint64_t>() >= mem.weights.size + mem.kv.size);
  CHECK(report["seconds"].get<double>() > 0);
  CHECK(report["bandwidth_bytes_per_second"].get<double>() > 0);
  REQUIRE(report["devices"].size() == 2);
  CHECK(report["devices"][0]["device"] == 0);
  CHECK(report["devices"][0]["tags"] == nlohmann::json{"weights"});
  CHECK(sleeping(port));
  auto direct = s.direct().is_sleeping({"weights"});
  REQUIRE(direct.ok());
  CHECK(*direct);

  // vLLM's wake of the weights alone, then of the rest.
  auto woke = http_post(port, "/wake_up?tags=weights");
  REQUIRE(woke.status == 200);
  CHECK(woke.json()["tags"] == nlohmann::json{"weights"});
  CHECK(woke.json()["bytes_restored"] == mem.weights.requested);
  CHECK(test::has_pattern(mem.weights.address, mem.weights.requested, 42));
  CHECK(sleeping(port));  // the KV cache still sleeps
  auto rest = http_post(port, "/wake_up");
  REQUIRE(rest.status == 200);
  CHECK(rest.json()["tags"] == nlohmann::json{"kv_cache"});
  CHECK_FALSE(sleeping(port));
  // Nothing asleep: a wake is idempotent, as vLLM's is.
  auto again = http_post(port, "/wake_up");
  REQUIRE(again.status == 200);
  CHECK(again.json()["tags"].empty());
}

TEST_CASE("control: levels 0 and 2, and a sleep of some tags", "[control][sleep]") {
  test::served_runtime s;
  auto mem = load(s);
  const auto port = s.port();

  auto all_kept = http_post(port, "/sleep?level=0");
  REQUIRE(all_kept.status == 200);
  CHECK(all_kept.json()["bytes_backed_up"] == mem.weights.requested + mem.kv.requested);
  CHECK(all_kept.json()["bytes_discarded"] == 0);
  REQUIRE(http_post(port, "/wake_up").status == 200);
  CHECK(test::has_pattern(mem.weights.address, mem.weights.requested, 42));

  auto none_kept = http_post(port, "/sleep?level=2");
  REQUIRE(none_kept.status == 200);
  CHECK(none_kept.json()["bytes_backed_up"] == 0);
  CHECK(none_kept.json()["bytes_discarded"] == mem.weights.requested + mem.kv.requested);
  REQUIRE(http_post(port, "/wake_up").status == 200);

  auto kv_only = http_post(port, "/sleep?level=1&tags=kv_cache");
  REQUIRE(kv_only.status == 200);
  CHECK(kv_only.json()["tags"] == nlohmann::json{"kv_cache"});
  auto status = http_get(port, "/v1/status").json();
  CHECK(status["devices"][0]["asleep_tags"].empty());
  CHECK(status["devices"][1]["asleep_tags"] == nlohmann::json{"kv_cache"});
  CHECK(status["is_sleeping"] == true);
  REQUIRE(http_post(port, "/wake_up?tags=kv_cache").status == 200);
}

TEST_CASE("control: SGLang's release and resume of memory occupation", "[control][sleep]") {
  test::served_runtime s;
  auto mem = load(s);
  const auto port = s.port();

  auto released = http_post(port, "/release_memory_occupation", R"({"tags": ["weights"]})");
  REQUIRE(released.status == 200);
  CHECK(released.json()["tags"] == nlohmann::json{"weights"});
  CHECK(released.json()["bytes_backed_up"] == mem.weights.requested);
  auto kv_awake = s.direct().is_sleeping({"kv_cache"});
  REQUIRE(kv_awake.ok());
  CHECK_FALSE(*kv_awake);
  auto resumed = http_post(port, "/resume_memory_occupation", R"({"tags": null})");
  REQUIRE(resumed.status == 200);
  CHECK(test::has_pattern(mem.weights.address, mem.weights.requested, 42));

  // No body, or an empty object: every tag.
  REQUIRE(http_post(port, "/release_memory_occupation").status == 200);
  CHECK(sleeping(port));
  REQUIRE(http_post(port, "/resume_memory_occupation", "{}").status == 200);
  CHECK_FALSE(sleeping(port));
}

TEST_CASE("control: status, statistics, snapshot, trim, defragment, health", "[control][v1]") {
  test::served_runtime s;
  auto mem = load(s);
  const auto port = s.port();

  auto health = http_get(port, "/healthz");
  REQUIRE(health.status == 200);
  CHECK(health.json()["status"] == "ok");

  auto status = http_get(port, "/v1/status").json();
  REQUIRE(status["devices"].size() == 2);
  CHECK(status["devices"][0]["state"] == "awake");
  CHECK(status["devices"][0]["pressure"] == "normal");
  CHECK(status["devices"][0]["backend"] == "host");
  CHECK(status["devices"][0]["total_bytes"] == 256 * MiB);
  CHECK(status["devices"][1]["live_regions"] == 1);
  CHECK(status["is_sleeping"] == false);

  auto stats = http_get(port, "/v1/stats").json();
  CHECK(stats["devices"][0]["tags"]["weights"]["allocated_bytes"]["current"] == mem.weights.size);
  CHECK(stats["devices"][1]["tags"]["kv_cache"]["allocations"] == 1);
  CHECK(stats["total"]["total"]["allocated_bytes"]["current"] == mem.weights.size + mem.kv.size);

  auto snapshot = http_get(port, "/v1/snapshot?device=1");
  REQUIRE(snapshot.status == 200);
  auto doc = snapshot.json();
  CHECK(doc["format"] == "gpumem.snapshot");
  CHECK(doc["device"] == 1);
  REQUIRE(doc["regions"].size() == 1);
  CHECK(doc["regions"][0]["tag"] == "kv_cache");

  // A freed large region leaves its segment cached: a trim of its device returns it.
  REQUIRE(s.direct().deallocate(mem.kv).ok());
  auto untouched = http_post(port, "/v1/trim?device=0");
  REQUIRE(untouched.status == 200);
  CHECK(untouched.json()["devices"].size() == 1);
  CHECK(untouched.json()["bytes_released"] == 0);
  auto trimmed = http_post(port, "/v1/trim");
  REQUIRE(trimmed.status == 200);
  CHECK(trimmed.json()["devices"].size() == 2);
  CHECK(trimmed.json()["bytes_released"].get<std::uint64_t>() >= mem.kv.size);
  auto defragmented = http_post(port, "/v1/defragment");
  REQUIRE(defragmented.status == 200);
  CHECK(defragmented.json()["devices"].size() == 2);
  CHECK(defragmented.json()["devices"][0].contains("fragmentation_after"));
}
