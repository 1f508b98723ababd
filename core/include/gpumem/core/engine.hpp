#pragma once
// The per-device allocation engine: plain single-threaded C++ over the device layer,
// knowing nothing of actors. One engine owns one device's address arena, its
// physical chunks, its pools (one per tag), its regions and its host backups.
//
//   auto e = engine::create(backend, config);
//   auto r = e->allocate({.size = 4 * MiB, .tag = "kv_cache"});
//   e->sleep(sleep_policy::level(1));      // weights to host, the rest discarded
//   e->wake_up({"weights", "kv_cache"});   // same addresses, weights' bytes restored
//
// Not thread-safe: one owner drives it (in gpumem, one actor).

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpumem/core/engine_config.hpp"
#include "gpumem/core/engine_types.hpp"
#include "gpumem/core/snapshot.hpp"
#include "gpumem/core/statistics.hpp"

namespace gpumem::core {

class engine {
public:
  /// Reserves the arena on config.device. The backend must outlive the engine.
  static engine_result<std::unique_ptr<engine>> create(cuda::device_backend& backend,
                                                       engine_config config = {});
  /// Unmaps and releases everything, and frees the arena.
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // --- allocation --------------------------------------------------------------
  engine_result<region_info> allocate(const allocation_request& request);
  engine_result<void> deallocate(region_id id);
  /// The error deallocate(id) would answer, or success; frees nothing (batch checks).
  engine_result<void> can_deallocate(region_id id) const;
  /// By the address allocate() returned (the region's first byte).
  engine_result<void> deallocate_at(device_ptr address);
  engine_result<region_info> region(region_id id) const;
  /// The region whose bytes include `address`.
  engine_result<region_info> region_at(device_ptr address) const;
  /// Marks the region used now (least-recently-used order for offloading).
  engine_result<void> touch(region_id id);
  /// Live regions in id order; with a tag, only that tag's.
  std::vector<region_info> regions(const std::string& tag = {}) const;

  // --- sleep and wake ----------------------------------------------------------
  /// Blocking sleep: backs up what the policy keeps, releases every chunk of the
  /// sleeping tags. The arena stays reserved. Work the client queued on the device
  /// before the sleep finishes first (backend synchronize); memory handed out is
  /// never copied or unmapped under a kernel (docs/gpu-contract.md).
  engine_result<transition_report> sleep(const sleep_policy& policy);
  /// Blocking wake of `tags` in the order given (empty: every sleeping tag, weights
  /// first). All or nothing: on failure the tags stay asleep and nothing leaks.
  engine_result<transition_report> wake_up(const std::vector<std::string>& tags = {});

  /// The same, one step at a time, for an owner that must stay responsive: begin,
  /// then call advance() until it returns a value (the report or the error).
  ///
  /// With commit_mode::on_commit the transition has two phases, for transitions that
  /// must be all or nothing across devices: advance() returns once the part that can
  /// fail is done, and nothing is lost yet (sleep: every backup taken, every region
  /// still mapped and resident; wake: memory mapped and bytes restored, the host
  /// backups kept and the tags still asleep). The engine is then prepared() until
  /// commit() (sleep: unmap, release, discard what the policy does not keep; wake:
  /// drop the backups, the tags are awake) or abort().
  engine_result<void> begin_sleep(const sleep_policy& policy,
                                  commit_mode mode = commit_mode::at_once);
  engine_result<void> begin_wake(const std::vector<std::string>& tags = {},
                                 commit_mode mode = commit_mode::at_once);
  std::optional<engine_result<transition_report>> advance();
  /// A two-phase transition has done its part that can fail and waits for commit().
  bool prepared() const noexcept;
  /// Finishes a prepared transition (it cannot fail there); the report of the whole.
  engine_result<transition_report> commit();
  /// Abandons the transition under way or prepared, losing nothing: a sleep drops
  /// its backups and every tag stays awake with its bytes in place; a wake unmaps
  /// what it mapped and every tag stays asleep with its backups.
  engine_result<void> abort();

  engine_state state() const noexcept;
  bool tag_asleep(const std::string& tag) const;
  /// Every tag's name, in tag_id order.
  std::vector<std::string> tags() const;
  /// The name of a tag this engine numbered (region_info::tag); "" for any other number.
  const std::string& tag_name(tag_id tag) const noexcept;

  // --- the cache and fragmentation ---------------------------------------------
  /// Returns wholly free segments (the cache) to the device.
  trim_report trim();
  /// Returns the cached segments idle for config().cache_decay or longer. The engine
  /// does this on its own calls too; an owner that may fall quiet calls it now and
  /// then, so that an idle process gives its cache back.
  trim_report release_idle();
  /// trim(), plus free chunks at the end of live segments, without moving anything.
  defragment_report defragment();
  /// 1 - live bytes / mapped bytes, over the engine or one tag.
  double fragmentation(const std::string& tag = {}) const;

  // --- observation -------------------------------------------------------------
  const engine_statistics& statistics() const noexcept;
  memory_snapshot snapshot() const;
  int device() const noexcept;
  const engine_config& config() const noexcept;
  /// Physical bytes this engine holds on the device (mapped or cached).
  std::size_t physical_bytes() const noexcept;
  /// The sticky CUDA error (CUDA_ERROR_ILLEGAL_ADDRESS and the like) that made the
  /// device unusable, if one did. From then on every operation that would touch the
  /// device fails with device_failure naming it, and nothing is asked of the device.
  const std::optional<cuda::device_error>& device_lost() const noexcept;

  /// Starts (or with nullptr stops) writing the allocation log to `out`.
  void set_allocation_log(std::ostream* out);
  /// The engine's time source in steady nanoseconds, never going back: regions' last
  /// use and the cache's idle time. Empty: the steady clock. A replay gives it the
  /// trace's time; tests, a clock they move.
  void set_clock(std::function<std::uint64_t()> now);

  struct impl;

private:
  explicit engine(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

} // namespace gpumem::core
