// The actor runtime's configuration: the shipped file, command-line overrides, every
// refused value (by message naming the key), and the mapping onto the engine's and
// the host backend's configurations.

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "gpumem/actors/runtime_config.hpp"
#include "gpumem/cuda/host_backend.hpp"

using namespace gpumem;
using namespace gpumem::actors;

namespace {

const std::string shipped_conf = std::string(GPUMEM_SOURCE_DIR) + "/config/gpumem.conf";

// A scratch config file (TOML), removed at the end of the test.
class temp_ini {
public:
  explicit temp_ini(const std::string& text) {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path()
            / ("gpumem_config_test_" + std::to_string(::getpid()) + "_"
               + std::to_string(counter++) + ".conf");
    std::ofstream(path_) << text;
  }
  ~temp_ini() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  std::string path() const { return path_.string(); }
  std::string flag() const { return "--config-file=" + path_.string(); }

private:
  std::filesystem::path path_;
};

// A missing default file: built-in defaults only.
const char* no_file = "/nonexistent/gpumem-test-default.conf";

// Parses and validates; returns the runtime_config or the error.
config_result<runtime_config> load(std::vector<std::string> args, const char* default_file = no_file) {
  gpumem_config cfg;
  auto parsed = cfg.parse_command_line(std::move(args), default_file);
  if (!parsed)
    return parsed.error();
  REQUIRE(*parsed == gpumem_config::parse_outcome::run);
  return cfg.to_runtime_config();
}

config_result<runtime_config> load_ini(const std::string& text, std::vector<std::string> args = {}) {
  temp_ini file(text);
  args.insert(args.begin(), file.flag());
  return load(std::move(args));
}

// Checks the configuration is refused with a message that starts with `key`.
void refused(const config_result<runtime_config>& result, const std::string& key,
             const std::string& fragment = {}) {
  REQUIRE_FALSE(result.ok());
  INFO(result.error().message);
  CHECK(result.error().key == key);
  CHECK(result.error().message.rfind(key + ":", 0) == 0);
  if (!fragment.empty())
    CHECK(result.error().message.find(fragment) != std::string::npos);
}

} // namespace

// refused() with the line of the call in any failure's report.
#define REFUSED(...)                 \
  do {                               \
    INFO("called at line " << __LINE__); \
    refused(__VA_ARGS__);            \
  } while (false)

TEST_CASE("the shipped config/gpumem.conf loads and validates", "[config]") {
  auto result = load({"--config-file=" + shipped_conf});
  INFO((result ? std::string{} : result.error().message));
  REQUIRE(result.ok());
  const auto& c = *result;
  CHECK(c.backend == backend_kind::host);
  CHECK(c.host.device_capacities() == std::vector<std::size_t>{1 * GiB, 1 * GiB});
  CHECK(c.host.granularity == 2 * MiB);
  CHECK(c.engine.small_chunk == 2 * MiB);
  CHECK(c.engine.large_chunk == 32 * MiB);
  CHECK(c.engine.cache_limit == 256 * MiB);
  CHECK(c.engine.packed_tags == std::vector<std::string>{"weights"});
  CHECK(c.allocator.default_strategy == core::strategy::pooled);
  CHECK(c.allocator.tag_strategies.empty());
  CHECK(c.balancer.routing == routing_policy::least_loaded);
  CHECK(c.pressure.period == std::chrono::milliseconds{100});
  CHECK(c.pressure.warning == Approx(0.80));
  CHECK(c.pressure.critical == Approx(0.92));
  CHECK(c.pressure.hysteresis == Approx(0.05));
  CHECK(c.allocator.pressure.trim_at_warning);
  CHECK(c.allocator.pressure.offload_at_critical);
  CHECK(c.allocator.pressure.offloadable_tags == std::vector<std::string>{"kv_cache"});
  CHECK(c.allocator.pressure.wake_on_normal);
  CHECK(c.allocator.while_asleep == asleep_behaviour::queue);
  CHECK(c.balancer.request_timeout == std::chrono::milliseconds{5000});
  CHECK(c.log_level == spdlog::level::info);
}

TEST_CASE("the shipped file states runtime_config's defaults, apart from the backend", "[config]") {
  auto shipped = load({"--config-file=" + shipped_conf});
  auto defaults = load({});  // no file at all
  REQUIRE(shipped.ok());
  REQUIRE(defaults.ok());
  CHECK(defaults->backend == backend_kind::automatic);
  auto a = *shipped;
  a.backend = defaults->backend;
  const auto& b = *defaults;
  CHECK(a.host.device_capacities() == b.host.device_capacities());
  CHECK(a.host.granularity == b.host.granularity);
  CHECK(a.engine.arena_size == b.engine.arena_size);
  CHECK(a.engine.small_chunk == b.engine.small_chunk);
  CHECK(a.engine.large_chunk == b.engine.large_chunk);
  CHECK(a.engine.small_segment == b.engine.small_segment);
  CHECK(a.engine.small_threshold == b.engine.small_threshold);
  CHECK(a.engine.default_alignment == b.engine.default_alignment);
  CHECK(a.engine.cache_limit == b.engine.cache_limit);
  CHECK(a.engine.wake_margin == b.engine.wake_margin);
  CHECK(a.engine.copy_piece == b.engine.copy_piece);
  CHECK(a.engine.copies_in_flight == b.engine.copies_in_flight);
  CHECK(a.pressure.period == b.pressure.period);
  CHECK(a.pressure.warning == b.pressure.warning);
  CHECK(a.pressure.critical == b.pressure.critical);
  CHECK(a.pressure.hysteresis == b.pressure.hysteresis);
  CHECK(a.balancer.request_timeout == b.balancer.request_timeout);
  CHECK(a.balancer.transition_timeout == b.balancer.transition_timeout);
  CHECK(a.balancer.refresh_interval == b.balancer.refresh_interval);
}

TEST_CASE("the shipped file is written from the option table", "[config]") {
  // Every option documented, no other: the file is config_file_text() for its values
  // (regenerate: gpumem demo --config-file=/dev/null --dump-config > config/gpumem.conf).
  auto shipped = load({"--config-file=" + shipped_conf});
  REQUIRE(shipped.ok());
  std::ifstream in(shipped_conf);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == config_file_text(*shipped));
  // And --dump-config's file reads back as the configuration it was written from.
  auto changed = load({"--gpumem.host.capacities=1G,512M", "--gpumem.engine.tag-strategies=a=dedicated",
                       "--gpumem.pressure.warning=0.5", "--gpumem.balancer.routing=round-robin"});
  REQUIRE(changed.ok());
  auto again = load_ini(config_file_text(*changed));
  INFO((again ? std::string{} : again.error().message));
  REQUIRE(again.ok());
  CHECK(config_file_text(*again) == config_file_text(*changed));
  CHECK(again->host.device_capacities() == std::vector<std::size_t>{1 * GiB, 512 * MiB});
}

TEST_CASE("the shipped file is the default file when none is named", "[config]") {
  gpumem_config cfg;
  auto parsed = cfg.parse_command_line(std::vector<std::string>{}, shipped_conf.c_str());
  REQUIRE(parsed.ok());
  auto result = cfg.to_runtime_config();
  REQUIRE(result.ok());
  CHECK(result->backend == backend_kind::host);
}

TEST_CASE("command-line values win over the file's", "[config]") {
  auto result = load({"--config-file=" + shipped_conf, "--gpumem.pressure.period-ms=250",
                      "--gpumem.backend=cuda", "--gpumem.host.capacity=512M",
                      "--gpumem.host.devices=3", "--gpumem.pressure.warning=0.7",
                      "--gpumem.pressure.trim-at-warning=false",
                      "--gpumem.pressure.offloadable-tags=kv_cache,activations",
                      "--gpumem.engine.tag-strategies=kv_cache=dedicated,scratch=first_fit",
                      "--gpumem.engine.default-strategy=first_fit",
                      "--gpumem.balancer.routing=tag-affinity", "--gpumem.while-asleep=fail",
                      "--gpumem.log-level=debug", "--gpumem.engine.cache-limit=1G",
                      "--gpumem.balancer.refresh-interval-ms=0",
                      "--gpumem.balancer.transition-timeout-ms=60000"});
  INFO((result ? std::string{} : result.error().message));
  REQUIRE(result.ok());
  const auto& c = *result;
  CHECK(c.pressure.period == std::chrono::milliseconds{250});
  CHECK(c.backend == backend_kind::cuda);
  CHECK(c.host.device_capacities() == std::vector<std::size_t>(3, 512 * MiB));
  CHECK(c.pressure.warning == Approx(0.7));
  CHECK_FALSE(c.allocator.pressure.trim_at_warning);
  CHECK(c.allocator.pressure.offloadable_tags == std::vector<std::string>{"kv_cache", "activations"});
  CHECK(c.allocator.tag_strategies.size() == 2);
  CHECK(c.allocator.strategy_for("kv_cache") == core::strategy::dedicated);
  CHECK(c.allocator.strategy_for("scratch") == core::strategy::first_fit);
  CHECK(c.allocator.strategy_for("weights") == core::strategy::first_fit);  // the default
  CHECK(c.balancer.routing == routing_policy::tag_affinity);
  CHECK(c.balancer.refresh_interval == std::chrono::milliseconds{0});
  CHECK(c.balancer.transition_timeout == std::chrono::minutes{1});
  CHECK(c.allocator.while_asleep == asleep_behaviour::fail);
  CHECK(c.log_level == spdlog::level::debug);
  CHECK(c.engine.cache_limit == 1 * GiB);
  // What the command line left alone still comes from the file.
  CHECK(c.pressure.critical == Approx(0.92));
  CHECK(c.engine.large_chunk == 32 * MiB);
}

TEST_CASE("a file's values, in every form TOML allows", "[config]") {
  auto result = load_ini(R"([gpumem]
backend = "host"
request-timeout-ms = 750
[gpumem.host]
capacities = ["1G", 536870912, "256MiB"]   # one per device
granularity = "4M"
[gpumem.engine]
tag-strategies = ["kv_cache=dedicated",
                  " scratch = first_fit "]
arena-size = "8G"
small-chunk = "4M"
small-segment = "4M"
packed-tags = []
default-alignment = 512
cache-limit = 134217728
[gpumem.pressure]
critical = 1
wake-on-normal = false
trim-at-warning = false
offload-at-critical = false
)");
  INFO((result ? std::string{} : result.error().message));
  REQUIRE(result.ok());
  const auto& c = *result;
  CHECK(c.balancer.request_timeout == std::chrono::milliseconds{750});
  CHECK(c.host.device_capacities() == std::vector<std::size_t>{1 * GiB, 512 * MiB, 256 * MiB});
  CHECK(c.host.granularity == 4 * MiB);
  CHECK(c.allocator.strategy_for("kv_cache") == core::strategy::dedicated);
  CHECK(c.allocator.strategy_for("scratch") == core::strategy::first_fit);
  CHECK(c.engine.arena_size == 8 * GiB);
  CHECK(c.engine.packed_tags.empty());
  CHECK(c.pressure.critical == 1.0);
  // Byte sizes as plain integers, booleans false.
  CHECK(c.engine.default_alignment == 512);
  CHECK(c.engine.cache_limit == 128 * MiB);
  CHECK_FALSE(c.allocator.pressure.wake_on_normal);
  CHECK_FALSE(c.allocator.pressure.trim_at_warning);
  CHECK_FALSE(c.allocator.pressure.offload_at_critical);
}

TEST_CASE("a plain integer byte size and a false boolean in the file take effect", "[config]") {
  auto result = load_ini("[gpumem.host]\ncapacity = 536870912\ndevices = 1\n"
                         "[gpumem.pressure]\nwake-on-normal = false\n");
  REQUIRE(result.ok());
  CHECK(result->host.device_capacities() == std::vector<std::size_t>{512 * MiB});
  CHECK_FALSE(result->allocator.pressure.wake_on_normal);
  // ...and the command line still wins over them.
  auto overridden = load_ini("[gpumem.host]\ncapacity = 536870912\n"
                             "[gpumem.pressure]\nwake-on-normal = false\n",
                             {"--gpumem.host.capacity=256M", "--gpumem.pressure.wake-on-normal=true"});
  REQUIRE(overridden.ok());
  CHECK(overridden->host.device_capacities() == std::vector<std::size_t>(2, 256 * MiB));
  CHECK(overridden->allocator.pressure.wake_on_normal);
}

TEST_CASE("byte sizes", "[config]") {
  std::size_t bytes = 0;
  CHECK((parse_byte_size("4096", bytes) && bytes == 4096));
  CHECK((parse_byte_size("512K", bytes) && bytes == 512 * KiB));
  CHECK((parse_byte_size("256M", bytes) && bytes == 256 * MiB));
  CHECK((parse_byte_size("1G", bytes) && bytes == GiB));
  CHECK((parse_byte_size(" 2 GiB ", bytes) && bytes == 2 * GiB));
  CHECK((parse_byte_size("3g", bytes) && bytes == 3 * GiB));
  CHECK((parse_byte_size("1T", bytes) && bytes == 1024 * GiB));
  CHECK((parse_byte_size("100B", bytes) && bytes == 100));
  CHECK_FALSE(parse_byte_size("", bytes));
  CHECK_FALSE(parse_byte_size("G", bytes));
  CHECK_FALSE(parse_byte_size("1.5G", bytes));
  CHECK_FALSE(parse_byte_size("-1G", bytes));
  CHECK_FALSE(parse_byte_size("12X", bytes));
  CHECK_FALSE(parse_byte_size("1Gb", bytes));
  CHECK_FALSE(parse_byte_size("99999999999T", bytes));
  CHECK_FALSE(parse_byte_size("184467440737095516160", bytes));
}

TEST_CASE("thresholds out of range or out of order are refused", "[config]") {
  REFUSED(load({"--gpumem.pressure.warning=1.7"}), "gpumem.pressure.warning",
          "expected a fraction between 0 and 1, got 1.7 (command line");
  REFUSED(load({"--gpumem.pressure.warning=0"}), "gpumem.pressure.warning");
  REFUSED(load({"--gpumem.pressure.warning=-0.2"}), "gpumem.pressure.warning");
  REFUSED(load({"--gpumem.pressure.critical=1.2"}), "gpumem.pressure.critical");
  REFUSED(load({"--gpumem.pressure.warning=0.95", "--gpumem.pressure.critical=0.9"}),
          "gpumem.pressure.critical", "above gpumem.pressure.warning");
  REFUSED(load({"--gpumem.pressure.warning=0.9", "--gpumem.pressure.critical=0.9"}),
          "gpumem.pressure.critical");
  REFUSED(load({"--gpumem.pressure.hysteresis=0.8"}), "gpumem.pressure.hysteresis",
          "below gpumem.pressure.warning");
  REFUSED(load({"--gpumem.pressure.hysteresis=-0.1"}), "gpumem.pressure.hysteresis");
  REFUSED(load_ini("[gpumem.pressure]\nwarning = 0.9\ncritical = 0.85\n"),
          "gpumem.pressure.critical", "line 3");
}

TEST_CASE("unknown names are refused", "[config]") {
  REFUSED(load({"--gpumem.backend=opencl"}), "gpumem.backend",
          R"(expected "auto", "host" or "cuda", got "opencl")");
  REFUSED(load({"--gpumem.engine.default-strategy=best_fit"}), "gpumem.engine.default-strategy",
          "best_fit");
  REFUSED(load({"--gpumem.balancer.routing=random"}), "gpumem.balancer.routing", "random");
  REFUSED(load({"--gpumem.balancer.transition-timeout-ms=0"}),
          "gpumem.balancer.transition-timeout-ms");
  REFUSED(load({"--gpumem.balancer.refresh-interval-ms=-5"}),
          "gpumem.balancer.refresh-interval-ms");
  REFUSED(load({"--gpumem.while-asleep=block"}), "gpumem.while-asleep");
  REFUSED(load({"--gpumem.log-level=verbose"}), "gpumem.log-level", "verbose");
  REFUSED(load_ini("[gpumem]\nbackend = \"\"\n"), "gpumem.backend");
}

TEST_CASE("bad byte sizes are refused", "[config]") {
  REFUSED(load({"--gpumem.host.capacity=lots"}), "gpumem.host.capacity",
          R"(got "lots")");
  REFUSED(load({"--gpumem.host.capacity=1.5G"}), "gpumem.host.capacity");
  REFUSED(load({"--gpumem.host.capacity=3M"}), "gpumem.host.capacity",
          "multiple of the granularity 2 MiB");
  REFUSED(load({"--gpumem.host.capacity=0"}), "gpumem.host.capacity");
  REFUSED(load({"--gpumem.host.granularity=3M"}), "gpumem.host.granularity", "power of two");
  REFUSED(load({"--gpumem.host.granularity=64K"}), "gpumem.host.granularity");
  REFUSED(load({"--gpumem.engine.small-chunk=1M"}), "gpumem.engine.small-chunk");
  REFUSED(load({"--gpumem.engine.large-chunk=5M"}), "gpumem.engine.large-chunk");
  REFUSED(load({"--gpumem.engine.small-segment=1M"}), "gpumem.engine.small-segment");
  REFUSED(load({"--gpumem.engine.small-threshold=4M"}), "gpumem.engine.small-threshold");
  REFUSED(load({"--gpumem.engine.small-threshold=0"}), "gpumem.engine.small-threshold");
  REFUSED(load({"--gpumem.engine.default-alignment=300"}), "gpumem.engine.default-alignment");
  REFUSED(load({"--gpumem.engine.arena-size=3M"}), "gpumem.engine.arena-size");
  REFUSED(load({"--gpumem.engine.copy-piece=0"}), "gpumem.engine.copy-piece");
  REFUSED(load({"--gpumem.engine.copies-in-flight=0"}), "gpumem.engine.copies-in-flight");
  REFUSED(load({"--gpumem.host.capacities=1G,1x"}), "gpumem.host.capacities", R"("1x")");
  REFUSED(load_ini("[gpumem.host]\ncapacity = -1\n"), "gpumem.host.capacity", "got -1");
  // capacities and devices/capacity must agree.
  REFUSED(load({"--gpumem.host.capacities=1G,1G", "--gpumem.host.devices=3"}),
          "gpumem.host.capacities", "lists 2 capacities");
  REFUSED(load({"--gpumem.host.capacities=1G,1G", "--gpumem.host.capacity=1G"}),
          "gpumem.host.capacities", "not both");
  // Granularity as the backend sees it: 4M host granularity makes 2M chunks wrong...
  REFUSED(load({"--gpumem.backend=host", "--gpumem.host.granularity=4M"}),
          "gpumem.engine.small-chunk", "gpumem.host.granularity");
  // ...but a CUDA backend does not use the host's granularity.
  auto cuda = load({"--gpumem.backend=cuda", "--gpumem.host.granularity=4M",
                    "--gpumem.host.capacity=1G"});
  CHECK(cuda.ok());
}

TEST_CASE("bad tag=strategy entries are refused", "[config]") {
  REFUSED(load({"--gpumem.engine.tag-strategies=kv_cache"}), "gpumem.engine.tag-strategies",
          "no '='");
  REFUSED(load({"--gpumem.engine.tag-strategies=kv_cache=fast"}), "gpumem.engine.tag-strategies",
          R"(unknown strategy "fast")");
  REFUSED(load({"--gpumem.engine.tag-strategies==dedicated"}), "gpumem.engine.tag-strategies",
          "empty tag name");
  REFUSED(load({"--gpumem.engine.tag-strategies=a=pooled,a=dedicated"}),
          "gpumem.engine.tag-strategies", "twice");
  REFUSED(load({"--gpumem.engine.tag-strategies=a=pooled,"}), "gpumem.engine.tag-strategies",
          "entry 2");
  REFUSED(load_ini("[gpumem.engine]\ntag-strategies = [\"kv_cache=dedicated\", \"x:pooled\"]\n"),
          "gpumem.engine.tag-strategies", R"(entry 2 "x:pooled")");
  REFUSED(load_ini("[gpumem.engine]\ntag-strategies = [\"kv_cache=dedicated\", 3]\n"),
          "gpumem.engine.tag-strategies");
}

TEST_CASE("wrongly typed file values are refused", "[config]") {
  // gpumem refuses to start, naming key and line.
  REFUSED(load_ini("[gpumem.pressure]\nperiod-ms = \"fast\"\n"), "gpumem.pressure.period-ms",
          R"(got "fast")");
  REFUSED(load_ini("[gpumem.pressure]\nperiod-ms = 2.5\n"), "gpumem.pressure.period-ms");
  REFUSED(load_ini("[gpumem.pressure]\nperiod-ms = 0\n"), "gpumem.pressure.period-ms");
  REFUSED(load_ini("[gpumem.pressure]\nwarning = \"0.8\"\n"), "gpumem.pressure.warning",
          "line 2");
  REFUSED(load_ini("[gpumem.pressure]\ntrim-at-warning = 1\n"), "gpumem.pressure.trim-at-warning",
          "true or false");
  REFUSED(load_ini("[gpumem.pressure]\noffloadable-tags = \"kv_cache\"\n"),
          "gpumem.pressure.offloadable-tags", "list");
  REFUSED(load_ini("[gpumem.pressure]\noffloadable-tags = [1, 2]\n"),
          "gpumem.pressure.offloadable-tags");
  REFUSED(load_ini("[gpumem]\nbackend = 3\n"), "gpumem.backend");
  REFUSED(load_ini("[gpumem.host]\ndevices = \"2\"\n"), "gpumem.host.devices");
  REFUSED(load_ini("[gpumem.engine]\ncopies-in-flight = true\n"), "gpumem.engine.copies-in-flight");
  REFUSED(load_ini("[gpumem.engine]\ncache-limit = 1.5\n"), "gpumem.engine.cache-limit",
          "got 1.5 (");
  // A group where an option belongs.
  REFUSED(load_ini("[gpumem.pressure.warning]\nx = 1\n"), "gpumem.pressure.warning");
}

TEST_CASE("syntax errors name the key on the offending line", "[config]") {
  // An unquoted word is no TOML value at all: the parser stops there.
  auto result = load_ini("[gpumem]\nbackend = \"host\"\n\n[gpumem.pressure]\nwarning = high\n");
  REFUSED(result, "gpumem.pressure.warning", "line 5");
  CHECK(result.error().message.find("`high`") != std::string::npos);
  REFUSED(load_ini("[gpumem]\nbackend = host\n"), "gpumem.backend", "double quotes");
  // An error not on a key's line names the file.
  REFUSED(load_ini("[gpumem\nbackend = \"host\"\n"), "config-file");
}

TEST_CASE("misspelt keys and groups are refused", "[config]") {
  REFUSED(load_ini("[gpumem.pressure]\nperod-ms = 100\n"), "gpumem.pressure.perod-ms",
          "the options of gpumem.pressure are: period-ms");
  REFUSED(load_ini("[gpumem.presure]\nperiod-ms = 100\n"), "gpumem.presure.period-ms",
          "no group");
  REFUSED(load_ini("[gpumem]\nbackends = \"host\"\n"), "gpumem.backends");
  REFUSED(load({"--gpumem.pressure.perod-ms=100"}), "gpumem.pressure.perod-ms", "unknown option");
}

TEST_CASE("command-line errors name the key", "[config]") {
  REFUSED(load({"--gpumem.pressure.period-ms=fast"}), "gpumem.pressure.period-ms",
          R"(got "fast" (command line)");
  REFUSED(load({"--gpumem.pressure.period-ms=-5"}), "gpumem.pressure.period-ms", "-5");
  REFUSED(load({"--gpumem.pressure.warning=high"}), "gpumem.pressure.warning", "high");
  REFUSED(load({"--gpumem.pressure.trim-at-warning=maybe"}), "gpumem.pressure.trim-at-warning",
          "true or false");
  REFUSED(load({"--gpumem.pressure.trim-at-warning"}), "gpumem.pressure.trim-at-warning",
          "true or false");
  // An argument that is not an option is refused, not skipped.
  auto stray = load({"serve", "--gpumem.backend=cuda"});
  REQUIRE_FALSE(stray.ok());
  CHECK(stray.error().message.find("unexpected argument \"serve\"") != std::string::npos);
  // A named file that does not exist is an error (a missing default file is not).
  REFUSED(load({"--config-file=/nonexistent/gpumem.conf"}), "config-file", "cannot open");
}

TEST_CASE("an error says where the value came from", "[config]") {
  temp_ini bad("[gpumem.pressure]\nwarning = 0.5\nperiod-ms = 0\n");
  REFUSED(load({bad.flag()}), "gpumem.pressure.period-ms", bad.path() + " line 3)");
  // A bad value in the file is refused even where the command line overrides it.
  REFUSED(load({bad.flag(), "--gpumem.pressure.period-ms=10"}), "gpumem.pressure.period-ms",
          bad.path() + " line 3)");
  temp_ini good("[gpumem.pressure]\nwarning = 0.5\n");
  REFUSED(load({good.flag(), "--gpumem.pressure.period-ms=-1"}), "gpumem.pressure.period-ms",
          "(command line: --gpumem.pressure.period-ms=-1)");
  REFUSED(load({good.flag(), "--gpumem.pressure.critical=0.4"}), "gpumem.pressure.critical",
          "above gpumem.pressure.warning 0.5");
}

TEST_CASE("the control plane's options", "[config]") {
  auto defaults = load({});
  REQUIRE(defaults.ok());
  CHECK(defaults->control.listen == "127.0.0.1:9470");  // loopback unless asked
  CHECK(defaults->control.read_timeout == std::chrono::milliseconds{10000});
  CHECK(defaults->control.body_limit == 64 * KiB);
  auto given = load({"--gpumem.control.listen=0.0.0.0:8080", "--gpumem.control.read-timeout-ms=250",
                     "--gpumem.control.write-timeout-ms=500", "--gpumem.control.body-limit=1M",
                     "--gpumem.control.max-connections=2"});
  REQUIRE(given.ok());
  CHECK(given->control.listen == "0.0.0.0:8080");
  CHECK(given->control.read_timeout == std::chrono::milliseconds{250});
  CHECK(given->control.write_timeout == std::chrono::milliseconds{500});
  CHECK(given->control.body_limit == 1 * MiB);
  CHECK(given->control.max_connections == 2);
  auto none = load({"--gpumem.control.listen="});
  REQUIRE(none.ok());
  CHECK(none->control.listen.empty());
  auto file = load_ini("[gpumem.control]\nlisten = \"[::1]:0\"\n");
  REQUIRE(file.ok());
  CHECK(file->control.listen == "[::1]:0");
  REFUSED(load({"--gpumem.control.listen=8080"}), "gpumem.control.listen",
          R"(expected "host:port" (port 0: any free one) or "" (none), got 8080 (command line)");
  REFUSED(load({"--gpumem.control.listen=localhost:65536"}), "gpumem.control.listen");
  REFUSED(load_ini("[gpumem.control]\nlisten = \":80\"\n"), "gpumem.control.listen", "line 2");
  REFUSED(load({"--gpumem.control.read-timeout-ms=0"}), "gpumem.control.read-timeout-ms");
  REFUSED(load({"--gpumem.control.max-connections=0"}), "gpumem.control.max-connections");
  REFUSED(load({"--gpumem.control.body-limit=lots"}), "gpumem.control.body-limit");
}

TEST_CASE("the CUDA backend's options", "[config]") {
  auto defaults = load({});
  REQUIRE(defaults.ok());
  CHECK_FALSE(defaults->cuda.peer_access);  // the owning GPU only, unless asked
  CHECK(defaults->cuda.exportable);
  CHECK(defaults->cuda.rdma_capable);
  CHECK(defaults->cuda.library.empty());  // $GPUMEM_CUDA_LIBRARY, else libcuda.so.1
  auto given = load({"--gpumem.cuda.peer-access=true", "--gpumem.cuda.rdma-capable=false"});
  REQUIRE(given.ok());
  CHECK(given->cuda.peer_access);
  CHECK_FALSE(given->cuda.rdma_capable);
  auto file = load_ini("[gpumem.cuda]\nexportable = false\n");
  REQUIRE(file.ok());
  CHECK_FALSE(file->cuda.exportable);
  REFUSED(load({"--gpumem.cuda.peer-access=2"}), "gpumem.cuda.peer-access", "true or false");
  REFUSED(load_ini("[gpumem.cuda]\nexportable = \"yes\"\n"), "gpumem.cuda.exportable", "line 2");
}

TEST_CASE("--help prints and asks to exit", "[config]") {
  gpumem_config cfg;
  auto parsed = cfg.parse_command_line(std::vector<std::string>{"--help"}, no_file);
  REQUIRE(parsed.ok());
  CHECK(*parsed == gpumem_config::parse_outcome::exit);
}

TEST_CASE("the mapping onto core::engine_config and cuda::host_backend_config", "[config]") {
  auto result = load({"--gpumem.backend=host", "--gpumem.host.capacities=1G,512M,256M",
                      "--gpumem.host.granularity=4M", "--gpumem.engine.arena-size=4G",
                      "--gpumem.engine.small-chunk=4M", "--gpumem.engine.large-chunk=64M",
                      "--gpumem.engine.small-segment=8M", "--gpumem.engine.small-threshold=512K",
                      "--gpumem.engine.default-alignment=1024", "--gpumem.engine.cache-limit=128M",
                      "--gpumem.engine.wake-margin=64M", "--gpumem.engine.copy-piece=16M",
                      "--gpumem.engine.copies-in-flight=8",
                      "--gpumem.engine.packed-tags=weights,embeddings"});
  INFO((result ? std::string{} : result.error().message));
  REQUIRE(result.ok());

  auto engine = result->engine_config_for(2);
  CHECK(engine.device == 2);
  CHECK(engine.arena_size == 4 * GiB);
  CHECK(engine.small_chunk == 4 * MiB);
  CHECK(engine.large_chunk == 64 * MiB);
  CHECK(engine.small_segment == 8 * MiB);
  CHECK(engine.small_threshold == 512 * KiB);
  CHECK(engine.default_alignment == 1024);
  CHECK(engine.cache_limit == 128 * MiB);
  CHECK(engine.wake_margin == 64 * MiB);
  CHECK(engine.copy_piece == 16 * MiB);
  CHECK(engine.copies_in_flight == 8);
  CHECK(engine.packed_tags == std::vector<std::string>{"weights", "embeddings"});
  CHECK(result->engine_config_for(0).device == 0);

  auto host = result->host_backend_config();
  REQUIRE(host.devices.size() == 3);
  CHECK(host.devices[0].capacity == 1 * GiB);
  CHECK(host.devices[1].capacity == 512 * MiB);
  CHECK(host.devices[2].capacity == 256 * MiB);
  for (const auto& d : host.devices) {
    CHECK(d.granularity == 4 * MiB);
    CHECK(d.recommended_granularity == 4 * MiB);
  }

  // The real host backend built from it agrees, and each engine config passes the
  // engine's own check against that device.
  cuda::host_backend backend(host);
  auto count = backend.device_count();
  REQUIRE(count.ok());
  CHECK(*count == 3);
  for (int d = 0; d < *count; ++d) {
    auto props = backend.properties(d);
    REQUIRE(props.ok());
    CHECK(props->total_memory == host.devices[static_cast<std::size_t>(d)].capacity);
    CHECK(props->granularity_minimum == 4 * MiB);
    auto checked = result->engine_config_for(d).validate(*props);
    INFO((checked ? std::string{} : checked.error().to_string()));
    CHECK(checked.ok());
  }
}

TEST_CASE("the shipped defaults build two 1 GiB host devices", "[config]") {
  auto result = load({"--config-file=" + shipped_conf});
  REQUIRE(result.ok());
  auto host = result->host_backend_config();
  REQUIRE(host.devices.size() == 2);
  cuda::host_backend backend(host);
  for (int d = 0; d < 2; ++d) {
    auto memory = backend.memory(d);
    REQUIRE(memory.ok());
    CHECK(memory->total == 1 * GiB);
    auto props = backend.properties(d);
    REQUIRE(props.ok());
    CHECK(result->engine_config_for(d).validate(*props).ok());
  }
  CHECK(std::string(to_string(result->backend)) == "host");
  CHECK(std::string(to_string(result->balancer.routing)) == "least-loaded");
  CHECK(std::string(to_string(result->allocator.while_asleep)) == "queue");
}

TEST_CASE("idle workers park at once, unless a --caf option says otherwise", "[config]") {
  const caf::string_view key = "work-stealing.moderate-sleep-duration";
  gpumem_config prompt;
  REQUIRE(prompt.parse_command_line(std::vector<std::string>{}, nullptr).ok());
  CHECK(caf::get_or(prompt, key, caf::timespan{12345}) == caf::timespan{0});

  gpumem_config caf_default;
  auto parsed = caf_default.parse_command_line(
    std::vector<std::string>{"--caf.work-stealing.moderate-sleep-duration=50us"}, nullptr);
  INFO((parsed ? std::string{} : parsed.error().message));
  REQUIRE(parsed.ok());
  CHECK(caf::get_or(caf_default, key, caf::timespan{0}) == caf::timespan{std::chrono::microseconds{50}});
}
