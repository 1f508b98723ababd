// The allocation log: what the writer writes, what the reader accepts (gpumem's own
// logs and RMM's), how it refuses malformed lines, and the engine writing one.

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "gpumem/core/allocation_log.hpp"
#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::core;

namespace {

std::vector<log_entry> read_ok(const std::string& text) {
  std::istringstream in(text);
  auto entries = read_allocation_log(in);
  INFO(text);
  REQUIRE(entries.ok());
  return std::move(entries).value();
}

engine_error read_error(const std::string& text) {
  std::istringstream in(text);
  auto entries = read_allocation_log(in);
  INFO(text);
  REQUIRE_FALSE(entries.ok());
  return entries.error();
}

constexpr const char* header = "Thread,Time,Action,Pointer,Size,Stream,Tag\n";

} // namespace

TEST_CASE("the allocation log reads back what it wrote", "[allocation_log]") {
  std::ostringstream out;
  {
    allocation_log log(out);
    log.record(log_action::allocate, 0x7f0000200000, 4 * MiB, "kv_cache");
    log.record(log_action::allocate_failure, 0, 64 * GiB, "weights");
    log.record(log_action::free, 0x7f0000200000, 4 * MiB, "kv_cache");
    log.record(log_action::allocate, 0x10, 1, "a tag, with \"quotes\"");
  }
  auto text = out.str();
  CHECK(text.rfind(header, 0) == 0);
  CHECK_THAT(text, Catch::Contains(",allocate,0x7f0000200000,4194304,0,kv_cache\n"));
  CHECK_THAT(text, Catch::Contains(",allocate failure,0x0,68719476736,0,weights\n"));

  auto entries = read_ok(text);
  REQUIRE(entries.size() == 4);
  CHECK(entries[0].action == log_action::allocate);
  CHECK(entries[0].pointer == 0x7f0000200000);
  CHECK(entries[0].size == 4 * MiB);
  CHECK(entries[0].stream == 0);
  CHECK(entries[0].tag == "kv_cache");
  CHECK(entries[1].action == log_action::allocate_failure);
  CHECK(entries[1].size == 64 * GiB);
  CHECK(entries[2].action == log_action::free);
  CHECK(entries[3].tag == "a tag, with \"quotes\"");
  // One thread wrote them all, in order, within the test's lifetime.
  CHECK(entries[0].thread == entries[3].thread);
  CHECK(entries[0].time >= 0);
  CHECK(entries[0].time <= entries[3].time);
  CHECK(entries[3].time < 60);
}

TEST_CASE("RMM's logs are read without a Tag column", "[allocation_log]") {
  // RMM's logging_resource_adaptor: wall-clock times, hexadecimal streams.
  auto entries = read_ok("Thread,Time,Action,Pointer,Size,Stream\n"
                         "140573312345856,12:34:56:789012,allocate,0x7f8a40000000,1024,0x7f8a38001020\n"
                         "140573312345856,12:34:56.900000,free,0x7f8a40000000,1024,0x0\r\n"
                         "140573312345856,1634567890.5,deallocate,7f8a40000400,2048,0\n"
                         "\n");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].thread == 140573312345856ull);
  CHECK(entries[0].time == Approx(12 * 3600 + 34 * 60 + 56.789012));
  CHECK(entries[0].pointer == 0x7f8a40000000);
  CHECK(entries[0].size == 1024);
  CHECK(entries[0].stream == 0x7f8a38001020);
  CHECK(entries[0].tag == "default");
  CHECK(entries[1].action == log_action::free);
  CHECK(entries[1].time == Approx(12 * 3600 + 34 * 60 + 56.9));
  CHECK(entries[2].action == log_action::free);
  CHECK(entries[2].time == Approx(1634567890.5));
  CHECK(entries[2].pointer == 0x7f8a40000400);
}

TEST_CASE("malformed allocation logs are refused, naming the line", "[allocation_log]") {
  std::string ok_line = "1,0.5,allocate,0x1000,64,0,default\n";

  auto empty = read_error("");
  CHECK(empty.code() == engine_errc::invalid_config);
  CHECK_THAT(empty.message(), Catch::Contains("line 1") && Catch::Contains("empty"));

  auto bad_header = read_error("Thread,Time,Action\n" + ok_line);
  CHECK(bad_header.code() == engine_errc::invalid_config);
  CHECK_THAT(bad_header.message(), Catch::Contains("line 1: expected the header"));

  struct bad_line {
    std::string line;
    std::string problem;
  };
  auto bad = GENERATE(values<bad_line>({
    {"1,0.5,allocate,0x1000,64,0\n", "expected 7 fields, got 6"},
    {"1,0.5,allocate,0x1000,64,0,kv,extra\n", "expected 7 fields, got 8"},
    {"x,0.5,allocate,0x1000,64,0,kv\n", "Thread 'x' is not a number"},
    {"1,soon,allocate,0x1000,64,0,kv\n", "Time 'soon'"},
    {"1,-1,allocate,0x1000,64,0,kv\n", "Time '-1'"},
    {"1,12:61:00:000000,allocate,0x1000,64,0,kv\n", "Time '12:61:00:000000'"},
    {"1,0.5,malloc,0x1000,64,0,kv\n", "Action 'malloc' is not allocate, free or allocate failure"},
    {"1,0.5,allocate,0xzz,64,0,kv\n", "Pointer '0xzz' is not hexadecimal"},
    {"1,0.5,allocate,0x1000,64K,0,kv\n", "Size '64K' is not a byte count"},
    {"1,0.5,allocate,0x1000,-64,0,kv\n", "Size '-64' is not a byte count"},
    {"1,0.5,allocate,0x1000,64,s,kv\n", "Stream 's' is not a number"},
    {"1,0.5,allocate,0x1000,64,0,\"kv\n", "unterminated quote"},
  }));
  // The bad line is the third: after the header and one good line (blank lines count).
  auto error = read_error(std::string(header) + ok_line + bad.line);
  CHECK(error.code() == engine_errc::invalid_config);
  CHECK_THAT(error.message(), Catch::StartsWith("allocation log line 3: ")
                                && Catch::Contains(bad.problem));
  auto after_blank = read_error(std::string(header) + "\n" + ok_line + bad.line);
  CHECK_THAT(after_blank.message(), Catch::StartsWith("allocation log line 4: "));
}

TEST_CASE("the engine writes its allocations, frees and failures to the log",
          "[allocation_log][engine]") {
  cuda::host_backend_config config;
  config.devices = {cuda::host_device_config{16 * MiB, 2 * MiB, 2 * MiB}};
  cuda::host_backend backend(config);
  auto created = engine::create(backend);
  REQUIRE(created.ok());
  auto& e = **created;

  std::ostringstream out;
  e.set_allocation_log(&out);
  allocation_request request;
  request.size = 3 * MiB;
  request.tag = "kv_cache";
  auto region = e.allocate(request);
  REQUIRE(region.ok());
  request.size = 14 * MiB;  // fits the device, but not beside the first region
  auto failed = e.allocate(request);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code() == engine_errc::out_of_memory);
  REQUIRE(e.deallocate(region->id).ok());
  e.set_allocation_log(nullptr);
  request.size = 1 * MiB;
  auto unlogged = e.allocate(request);  // after the log stopped
  REQUIRE(unlogged.ok());
  REQUIRE(e.deallocate(unlogged->id).ok());

  auto entries = read_ok(out.str());
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].action == log_action::allocate);
  CHECK(entries[0].pointer == region->address);
  CHECK(entries[0].size >= 3 * MiB);
  CHECK(entries[0].tag == "kv_cache");
  CHECK(entries[1].action == log_action::allocate_failure);
  CHECK(entries[1].size == 14 * MiB);
  CHECK(entries[1].tag == "kv_cache");
  CHECK(entries[2].action == log_action::free);
  CHECK(entries[2].pointer == region->address);
  CHECK(entries[2].tag == "kv_cache");
  CHECK(entries[0].time <= entries[2].time);
}
