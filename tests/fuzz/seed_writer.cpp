// Writes the generated seeds of corpus/: a real engine's snapshots and allocation
// log (host backend), and every protocol value type serialized as CAF does, its
// selector byte first. Run it by hand when a format changes:
//   build/fuzz/tests/fuzz/gpumem_fuzz_seed_writer tests/fuzz/corpus

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <caf/binary_serializer.hpp>

#include "gpumem/core/engine.hpp"
#include "gpumem/cuda/byte_units.hpp"
#include "gpumem/cuda/host_backend.hpp"
#include "protocol_types.hpp"

using namespace gpumem;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
  std::printf("%s (%zu bytes)\n", path.string().c_str(), bytes.size());
}

template <class T>
std::string serialized(std::size_t selector, T value) {
  std::vector<char> bytes{static_cast<char>(selector)};
  caf::binary_serializer sink{nullptr, bytes};
  if (auto err = sink(value))
    throw std::runtime_error(caf::to_string(err));
  return std::string(bytes.begin(), bytes.end());
}

/// A value of one of the protocol's types, with its selector.
template <class T>
std::string serialized(T value) {
  constexpr auto selector = fuzz::protocol_types::selector_of<T>();
  static_assert(selector < fuzz::protocol_types::selectors, "a protocol type");
  return serialized(selector, std::move(value));
}

// -- a real engine: its snapshots and its log -----------------------------------------

int write_engine_seeds(const fs::path& corpus, std::string& snapshot_json) {
  cuda::host_backend backend;
  auto created = core::engine::create(backend);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.error().to_string().c_str());
    return 1;
  }
  auto& engine = **created;
  std::ostringstream log;
  engine.set_allocation_log(&log);
  std::vector<core::region_id> kv;
  (void)engine.allocate({.size = 40 * MiB, .tag = "weights"});
  (void)engine.allocate({.size = 3 * MiB, .tag = "weights"});
  for (int i = 0; i < 4; ++i)
    if (auto r = engine.allocate({.size = 256 * KiB, .tag = "kv_cache"}))
      kv.push_back(r->id);
  (void)engine.allocate({.size = 6 * MiB, .tag = "kv_cache", .how = core::strategy::dedicated});
  (void)engine.allocate({.size = 512 * KiB, .tag = "activations", .how = core::strategy::first_fit});
  (void)engine.deallocate(kv[1]);
  (void)engine.allocate({.size = 8 * GiB, .tag = "kv_cache"});  // an allocate failure
  write_file(corpus / "snapshot_from_json/awake.json", engine.snapshot().to_json());
  snapshot_json = engine.snapshot().to_json(-1);
  (void)engine.sleep(core::sleep_policy::level(1));
  write_file(corpus / "snapshot_from_json/asleep.json", engine.snapshot().to_json(-1));
  (void)engine.wake_up();
  (void)engine.deallocate(kv[0]);
  write_file(corpus / "allocation_log_reader/engine.csv", log.str());
  return 0;
}

// -- every protocol value type --------------------------------------------------------

void write_message_seeds(const fs::path& corpus, const std::string& snapshot_json) {
  namespace m = messages;
  const fs::path dir = corpus / "message_deserializer";
  std::size_t selector = 0;
  // Each type's default value, alone and as a vector of two.
  for (; selector < fuzz::protocol_types::selectors; ++selector)
    fuzz::protocol_types::visit(selector, [&]<class T>() {
      T value{};
      if constexpr (requires { value.push_back({}); }) {
        value.push_back({});
        value.push_back({});
      }
      write_file(dir / ("default_" + std::to_string(selector) + ".bin"),
                 serialized(selector, std::move(value)));
    });
  // Values as the runtime sends them.
  m::region_handle handle{0, 7, 0x7f0000200000, 2 * MiB, 1536 * KiB, "kv_cache"};
  write_file(dir / "region_handle.bin", serialized(handle));
  m::allocation_request request{4 * MiB, "weights", m::strategy::dedicated, 4096, 1};
  write_file(dir / "allocation_request.bin", serialized(request));
  m::batch_allocation_request batch{{request, {.size = 1024, .tag = "kv_cache"}}};
  write_file(dir / "batch_allocation_request.bin", serialized(batch));
  write_file(dir / "batch_deallocation_request.bin",
             serialized(m::batch_deallocation_request{{handle, handle}}));
  write_file(dir / "sleep_policy.bin",
             serialized(m::sleep_policy::backing_up({"weights"}, {"weights", "kv_cache"})));
  m::transition_report report{1, m::transition_kind::wake, {"weights"}, 0, 0, 0, 32 * MiB,
                              32 * MiB, 0.0125, 0.01};
  write_file(dir / "transition_report.bin", serialized(report));
  m::statistics stats;
  stats.device = 1;
  stats.total.allocated = {64 << 20, 96 << 20, 128 << 20, 64 << 20};
  stats.tags = {{"kv_cache", stats.total}, {"weights", {}}};
  stats.sleep_seconds = 0.25;
  write_file(dir / "statistics.bin", serialized(stats));
  write_file(dir / "cluster_statistics.bin",
             serialized(m::cluster_statistics{stats, {stats, stats}}));
  write_file(dir / "memory_snapshot.bin", serialized(m::memory_snapshot{0, snapshot_json}));
  m::device_status status;
  status.state = m::device_state::asleep;
  status.pressure = m::pressure_level::critical;
  status.asleep_tags = {"kv_cache"};
  status.offloaded_tags = {"kv_cache"};
  status.fragmentation = 0.125;
  write_file(dir / "device_status.bin", serialized(status));
  write_file(dir / "balancer_status.bin",
             serialized(m::balancer_status{"least-loaded", {status, status}, 12, 1}));
  m::pressure_event event{0, 1 << 20, 1 << 30, m::pressure_level::warning,
                          m::pressure_level::normal, 1700000000000000000};
  write_file(dir / "pressure_monitor_status.bin",
             serialized(m::pressure_monitor_status{{event, event}, 2, 100000000, 5}));
  m::device_info info{0, "host-emulated", "host", 1 << 30, 1 << 29, 2 << 20,
                     m::device_state::awake};
  m::node_info node{"7F3A2B#1234", "gpu-node-1", 1234, {info, info}, 5000, 300000};
  write_file(dir / "node_info.bin", serialized(node));
  m::cluster_node up{"10.0.0.2:9471", m::node_health::up, node, "", 120};
  m::cluster_node lost{"10.0.0.3:9471", m::node_health::lost, {}, "no heartbeat answer", 2400};
  write_file(dir / "cluster_status.bin", serialized(m::cluster_status{{up, lost}, 500, 2000}));
  write_file(dir / "nodes_statistics.bin",
             serialized(m::nodes_statistics{stats, {{"10.0.0.2:9471", {stats, {stats}}}}}));
  write_file(dir / "placement_request.bin",
             serialized(m::placement_request{request, "10.0.0.2:9471"}));
  write_file(dir / "placed_region.bin", serialized(m::placed_region{"10.0.0.2:9471", handle}));
  write_file(dir / "collective_request.bin",
             serialized(m::collective_request{m::transition_kind::sleep,
                                              m::sleep_policy::at_level(1), {},
                                              {"10.0.0.2:9471", "10.0.0.3:9471"}}));
  write_file(dir / "node_transition.bin",
             serialized(m::node_transition{"10.0.0.2:9471", {report, report}}));
  write_file(dir / "node_pressure_event.bin",
             serialized(m::node_pressure_event{"10.0.0.2:9471", event}));
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  std::string snapshot_json;
  if (int rc = write_engine_seeds(argv[1], snapshot_json))
    return rc;
  write_message_seeds(argv[1], snapshot_json);
  return 0;
}
