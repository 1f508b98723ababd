// The engine's public face and its allocation path.

#include <time.h>

#include <algorithm>
#include <ostream>

#include "engine_impl.hpp"

namespace gpumem::core {

using namespace detail;

namespace {

// The steady clock's epoch at a few milliseconds' resolution: plenty to order regions
// by last use, and a fraction of the cost of a precise clock read on the hot path.
std::uint64_t now_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u
         + static_cast<std::uint64_t>(now.tv_nsec);
}

bool power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

engine_error device_failure(const std::string& doing, const cuda::device_error& e) {
  return {engine_errc::device_failure, doing + ": " + e.to_string(), e};
}

} // namespace

const char* detail::to_string(pool_kind kind) noexcept {
  switch (kind) {
    case pool_kind::small: return "small";
    case pool_kind::large: return "large";
    case pool_kind::dedicated: return "dedicated";
  }
  return "small";
}

// --- construction ----------------------------------------------------------------------

engine::engine(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

engine_result<std::unique_ptr<engine>> engine::create(cuda::device_backend& backend,
                                                      engine_config config) {
  auto props = backend.properties(config.device);
  if (!props)
    return engine_error{engine_errc::invalid_config,
                        "device " + std::to_string(config.device) + ": " + props.error().to_string(),
                        props.error()};
  if (auto valid = config.validate(*props); !valid)
    return valid.error();
  auto arena_size = config.arena_size != 0
                      ? config.arena_size
                      : cuda::round_up(8 * props->total_memory, props->granularity_minimum);
  // A block lies in a segment, which is mapped whole at some time: no larger than
  // the device.
  if (props->total_memory >= max_block_bytes)
    return engine_error{engine_errc::invalid_config,
                        "device " + std::to_string(config.device) + " holds "
                          + format_bytes(props->total_memory) + "; the engine handles below "
                          + format_bytes(max_block_bytes)
                          + " (block sizes are kept in 32 bits of 256-byte units)"};
  auto base = backend.reserve(config.device, arena_size, props->granularity_minimum);
  if (!base)
    return device_failure("reserving the " + format_bytes(arena_size) + " address arena",
                          base.error());
  auto state = std::make_unique<impl>(backend, std::move(config), std::move(props).value(), *base,
                                      arena_size);
  return std::unique_ptr<engine>(new engine(std::move(state)));
}

engine::~engine() {
  auto& s = *impl_;
  if (s.active)
    for (auto& copy : s.active->in_flight)
      (void)copy->wait();
  for (std::uint32_t i = 0; i < s.segments.size(); ++i)
    if (s.segments[i].live && s.segments[i].mapped)
      s.unmap_segment(i);
  (void)s.backend.free_reservation(s.arena.base(), s.arena.size());
}

// --- the device's health and the synchronization contract ------------------------------

void engine::impl::observe(const cuda::device_error& e) {
  if (!lost && cuda::is_sticky(e.code()))
    lost = e;
}

engine_result<void> engine::impl::usable(const char* verb) const {
  if (!lost)
    return {};
  return engine_error{engine_errc::device_failure,
                      std::string(verb) + ": device " + std::to_string(config.device)
                        + " is lost since a sticky CUDA error, and nothing more is asked of "
                          "it (restart the process): " + lost->to_string(),
                      *lost};
}

engine_result<void> engine::impl::settle(const std::string& why) {
  if (auto ok = usable(why.c_str()); !ok)
    return ok;
  auto synced = backend.synchronize(config.device);
  if (synced)
    return {};
  observe(synced.error());
  return engine_error{engine_errc::device_failure,
                      why + ": waiting for the device's queued work failed: "
                        + synced.error().to_string(),
                      synced.error()};
}

bool engine::impl::unmap_handed_out(cuda::device_ptr address, std::size_t size) {
  // Kernels may still use what was handed out: unmapping under them is a fatal fault.
  if (!settle("unmap"))
    return false;
  observe(backend.unmap(address, size));
  return true;
}

// --- tags and accounting -----------------------------------------------------------------

std::uint64_t engine::impl::now() const { return clock ? clock() : now_ns(); }

std::optional<std::uint32_t> engine::impl::find_tag_in_map(std::string_view name) const {
  auto it = tag_ids.find(name);
  if (it == tag_ids.end())
    return std::nullopt;
  last_tag = it->second;
  return it->second;
}

std::uint32_t engine::impl::tag_for(std::string_view name) {
  if (auto found = find_tag(name))
    return *found;
  auto id = static_cast<std::uint32_t>(tags.size());
  tag_record record;
  record.name = std::string(name);
  for (auto kind : {pool_kind::small, pool_kind::large, pool_kind::dedicated}) {
    record.pools[static_cast<int>(kind)] = static_cast<std::uint32_t>(pools.size());
    pools.emplace_back();
    pools.back().tag = id;
    pools.back().kind = kind;
  }
  record.packed = std::find(config.packed_tags.begin(), config.packed_tags.end(), name)
                  != config.packed_tags.end();
  record.stats = &stats.tags[record.name];  // present in statistics from the start
  tag_ids.emplace(record.name, id);
  tags.push_back(std::move(record));
  return id;
}

void engine::impl::account(std::uint32_t tag, stat stat_grid::*field, std::int64_t delta) {
  (grid(tag).*field).add(delta);
  (stats.total.*field).add(delta);
}

region_info engine::impl::describe(const region_record& r) {
  region_info out;
  out.id = r.id;
  out.address = r.address;
  out.size = r.size;
  out.requested = r.requested;
  out.tag = r.tag;
  out.how = r.how;
  out.state = r.state;
  out.contents_defined = r.contents_defined;
  out.last_use_ns = r.last_use_ns;
  return out;
}

engine_state engine::impl::current_state() const {
  if (active)
    return active->kind == transition_kind::sleep ? engine_state::falling_asleep
                                                  : engine_state::waking;
  for (const auto& t : tags)
    if (t.asleep)
      return engine_state::asleep;
  return engine_state::awake;
}

// --- allocation ---------------------------------------------------------------------------

engine_error engine::impl::out_of_memory(const allocation_request& request,
                                         const std::string& cause) const {
  auto device = backend.memory(config.device);
  std::string free_text = device ? format_bytes(device->free) + " free of "
                                     + format_bytes(device->total)
                                 : "free memory unknown";
  return {engine_errc::out_of_memory,
          "cannot allocate " + format_bytes(request.size) + " for tag '" + std::string(request.tag)
            + "' on device " + std::to_string(config.device) + ": requested "
            + format_bytes(request.size) + ", allocated "
            + format_bytes(static_cast<std::size_t>(stats.total.allocated.current))
            + ", reserved " + format_bytes(mapped_bytes) + " (" + format_bytes(cached_bytes)
            + " cached), device " + free_text + " (" + cause + ")"};
}

engine_result<region_info> engine::impl::allocate(const allocation_request& request) {
  if (lost) [[unlikely]]
    return usable("allocate").error();
  if (request.size == 0)
    return engine_error{engine_errc::zero_size, "allocate: size must be non-zero"};
  if (request.size > props.total_memory)
    return engine_error{engine_errc::too_large,
                        "allocate(" + format_bytes(request.size) + "): more than device "
                          + std::to_string(config.device) + " holds ("
                          + format_bytes(props.total_memory) + ")"};
  auto alignment = request.alignment != 0 ? request.alignment : config.default_alignment;
  if (!power_of_two(alignment) || alignment > props.granularity_minimum)
    return engine_error{engine_errc::invalid_alignment,
                        "allocate: alignment " + std::to_string(request.alignment)
                          + " must be a power of two no larger than the granularity ("
                          + format_bytes(props.granularity_minimum) + ")"};
  alignment = std::max(alignment, block_unit);
  if (request.tag.empty())
    return engine_error{engine_errc::invalid_tag, "allocate: the tag must not be empty"};
  if (active)
    return engine_error{engine_errc::transition_in_progress,
                        "allocate: a " + std::string(active->kind == transition_kind::sleep
                                                       ? "sleep" : "wake")
                          + " is in progress"};
  // With many regions live, the indexes miss the cache: start loading them early.
  regions.prefetch_insert();
  auto now = this->now();
  if (!cache_lru.empty())
    release_idle(now);
  auto known = find_tag(request.tag);
  if (known && tags[*known].asleep)
    return engine_error{engine_errc::tag_asleep,
                        "allocate: tag '" + std::string(request.tag) + "' is asleep; wake it first"};
  auto tag = known ? *known : tag_for(request.tag);
  auto size = cuda::round_up(request.size, block_unit);
  auto kind = request.how == strategy::dedicated ? pool_kind::dedicated
              : size <= config.small_threshold   ? pool_kind::small
                                                 : pool_kind::large;
  if (kind == pool_kind::dedicated)
    size = cuda::round_up(request.size, config.small_chunk);
  auto p = tags[tag].pools[static_cast<int>(kind)];
  auto mode = request.how == strategy::first_fit ? fit_mode::good : fit_mode::best;

  auto b = kind == pool_kind::dedicated ? no_block : pools[p].blocks.find(size, alignment, mode);
  if (b == no_block && kind == pool_kind::large && tags[tag].packed) {
    if (auto grown = grow_newest_segment(p, size, alignment))
      b = *grown;  // failure to grow is not an error: a new segment is tried next
  }
  if (b == no_block) {
    auto segment_size = kind == pool_kind::small ? config.small_segment
                                                 : cuda::round_up(size, config.small_chunk);
    auto s = create_segment(p, segment_size);
    if (!s && s.error().code() == engine_errc::out_of_memory
        && release_cache(0).bytes_released > 0) {
      s = create_segment(p, segment_size);
      if (s)
        ++stats.oom_retries;
    }
    if (!s) {
      if (log)
        log->record(log_action::allocate_failure, 0, request.size, request.tag);
      if (s.error().code() != engine_errc::out_of_memory)
        return s.error();
      ++stats.ooms;
      return out_of_memory(request, s.error().message());
    }
    b = segments[*s].first_block;
  }
  auto& blocks = pools[p].blocks;
  // Only a block spanning its segment can lie in a cached (wholly free) segment. It is
  // cut to what a new segment would be (a small segment, or the region's own): the
  // rest stays cached for any tag rather than idle in this pool. Packed tags grow
  // their segments and keep them whole.
  if (blocks.spans_segment(b)) {
    if (auto seg = blocks.at(b).segment; segments[seg].cached) {
      if (kind == pool_kind::small)
        split_cached(seg, config.small_segment);
      else if (!tags[tag].packed)
        split_cached(seg, cuda::round_up(size, config.small_chunk));
      unmark_cached(seg);
    }
  }
  regions.prefetch_address(blocks.at(b).address);  // (the address of the block found)
  b = blocks.allocate_from(b, size, alignment);

  region_record r;
  r.address = blocks.at(b).address;
  r.size = size;
  r.requested = request.size;
  r.last_use_ns = now;
  r.pool = p;
  r.block = b;
  r.tag = tag;
  r.how = request.how;
  auto slot = regions.insert(r);
  blocks.at(b).set_owner(slot);

  const auto& stored = regions.at(slot);
  account_region(stored, +1);
  if (log)
    log->record(log_action::allocate, stored.address, stored.requested, request.tag);
  return describe(stored);
}

engine_result<void> engine::impl::free_slot(std::uint32_t slot) {
  if (active)
    return engine_error{engine_errc::transition_in_progress,
                        "deallocate: a sleep or wake is in progress"};
  auto& record = regions.at(slot);
  auto p = record.pool;
  pools[p].blocks.prefetch(record.block);
  regions.prefetch_address(record.address);
  if (record.backup != nullptr)
    backups.release(record.requested);
  account_region(record, -1);
  if (log)
    log->record(log_action::free, record.address, record.requested, tags[record.tag].name);

  auto& blocks = pools[p].blocks;
  auto b = blocks.release(record.block);
  regions.erase(slot);
  if (!blocks.spans_segment(b))
    return {};
  auto seg = blocks.at(b).segment;
  if (pools[p].kind == pool_kind::dedicated || !segments[seg].mapped) {
    destroy_segment(seg);  // vLLM-style memory goes back at once; asleep, nothing to keep
  } else {
    auto now = this->now();
    mark_cached(seg, now);
    if (config.cache_limit != 0 && cached_bytes > config.cache_limit)
      release_cache(config.cache_limit);
    release_idle(now);
  }
  return {};
}

engine_result<region_info> engine::allocate(const allocation_request& request) {
  return impl_->allocate(request);
}

engine_result<void> engine::can_deallocate(region_id id) const {
  if (impl_->regions.find(id))
    return {};
  bool issued = impl_->regions.issued(id);
  return engine_error{issued ? engine_errc::double_free : engine_errc::unknown_region,
                      "deallocate: region " + std::to_string(id) +
                        (issued ? " was already freed" : " does not exist")};
}

engine_result<void> engine::deallocate(region_id id) {
  auto slot = impl_->regions.find(id);
  if (!slot)
    return can_deallocate(id);
  return impl_->free_slot(*slot);
}

engine_result<void> engine::deallocate_at(device_ptr address) {
  auto slot = impl_->regions.find_at(address);
  if (!slot) {
    char text[32];
    std::snprintf(text, sizeof text, "%#zx", static_cast<std::size_t>(address));
    return engine_error{engine_errc::unknown_region,
                        std::string("deallocate: no live region starts at ") + text};
  }
  return impl_->free_slot(*slot);
}

engine_result<region_info> engine::region(region_id id) const {
  auto slot = impl_->regions.find(id);
  if (!slot)
    return engine_error{engine_errc::unknown_region,
                        "region " + std::to_string(id)
                          + (impl_->regions.issued(id) ? " was freed" : " does not exist")};
  return impl_->describe(impl_->regions.at(*slot));
}

engine_result<region_info> engine::region_at(device_ptr address) const {
  const auto& s = *impl_;
  if (auto slot = s.regions.find_at(address))
    return s.describe(s.regions.at(*slot));
  // Inside a region: find its segment, then walk that segment's blocks.
  auto it = s.segments_by_address.upper_bound(address);
  if (it != s.segments_by_address.begin()) {
    const auto& seg = s.segments[std::prev(it)->second];
    if (address < seg.address + seg.size) {
      const auto& blocks = s.pools[seg.pool].blocks;
      for (auto b = seg.first_block; b != no_block; b = blocks.at(b).next_in_segment) {
        const auto& blk = blocks.at(b);
        if (address >= blk.address && address < blk.address + blk.size()) {
          if (!blk.free())
            return s.describe(s.regions.at(blk.owner()));
          break;
        }
      }
    }
  }
  char text[32];
  std::snprintf(text, sizeof text, "%#zx", static_cast<std::size_t>(address));
  return engine_error{engine_errc::unknown_region, std::string("no live region holds ") + text};
}

engine_result<void> engine::touch(region_id id) {
  auto slot = impl_->regions.find(id);
  if (!slot)
    return engine_error{engine_errc::unknown_region,
                        "touch: region " + std::to_string(id) + " is not live"};
  impl_->regions.at(*slot).last_use_ns = impl_->now();
  return {};
}

std::vector<region_info> engine::regions(const std::string& tag) const {
  std::vector<region_info> out;
  impl_->regions.for_each([&](std::uint32_t, const region_record& r) {
    if (tag.empty() || impl_->tags[r.tag].name == tag)
      out.push_back(impl_->describe(r));
  });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

// --- sleep and wake -----------------------------------------------------------------------

engine_result<void> engine::begin_sleep(const sleep_policy& policy, commit_mode mode) {
  return impl_->begin_sleep(policy, mode);
}

engine_result<void> engine::begin_wake(const std::vector<std::string>& tags, commit_mode mode) {
  return impl_->begin_wake(tags, mode);
}

std::optional<engine_result<transition_report>> engine::advance() {
  return impl_->advance(false);
}

const std::optional<cuda::device_error>& engine::device_lost() const noexcept {
  return impl_->lost;
}

bool engine::prepared() const noexcept { return impl_->active && impl_->active->prepared; }

engine_result<transition_report> engine::commit() {
  if (!prepared())
    return engine_error{engine_errc::invalid_transition,
                        "commit: no prepared sleep or wake to commit"};
  return impl_->finish_transition();
}

engine_result<void> engine::abort() {
  if (!impl_->active)
    return engine_error{engine_errc::invalid_transition,
                        "abort: no sleep or wake to abort"};
  impl_->roll_back_transition();
  return {};
}

engine_result<transition_report> engine::sleep(const sleep_policy& policy) {
  if (auto begun = impl_->begin_sleep(policy, commit_mode::at_once); !begun)
    return begun.error();
  for (;;)
    if (auto done = impl_->advance(true))
      return std::move(*done);
}

engine_result<transition_report> engine::wake_up(const std::vector<std::string>& tags) {
  if (auto begun = impl_->begin_wake(tags, commit_mode::at_once); !begun)
    return begun.error();
  for (;;)
    if (auto done = impl_->advance(true))
      return std::move(*done);
}

engine_state engine::state() const noexcept { return impl_->current_state(); }

bool engine::tag_asleep(const std::string& tag) const {
  auto t = impl_->find_tag(tag);
  return t && impl_->tags[*t].asleep;
}

std::vector<std::string> engine::tags() const {
  std::vector<std::string> names;
  for (const auto& t : impl_->tags)
    names.push_back(t.name);
  return names;
}

const std::string& engine::tag_name(tag_id tag) const noexcept {
  static const std::string none;
  return tag < impl_->tags.size() ? impl_->tags[tag].name : none;
}

// --- fragmentation and observation --------------------------------------------------------

trim_report engine::trim() {
  auto report = impl_->release_cache(0);
  ++impl_->stats.trims;
  impl_->stats.bytes_trimmed += report.bytes_released;
  return report;
}

trim_report engine::release_idle() { return impl_->release_idle(impl_->now()); }

defragment_report engine::defragment() {
  defragment_report report;
  report.fragmentation_before = fragmentation();
  auto trimmed = impl_->release_cache(0);
  report.bytes_released_cached = trimmed.bytes_released;
  report.segments_released = trimmed.segments_released;
  report.bytes_released_tails = impl_->release_free_tails();
  report.fragmentation_after = fragmentation();
  ++impl_->stats.defragmentations;
  impl_->stats.bytes_trimmed += report.bytes_released_cached + report.bytes_released_tails;
  return report;
}

double engine::fragmentation(const std::string& tag) const {
  if (tag.empty())
    return impl_->stats.total.fragmentation();
  auto it = impl_->stats.tags.find(tag);
  return it == impl_->stats.tags.end() ? 0.0 : it->second.fragmentation();
}

const engine_statistics& engine::statistics() const noexcept { return impl_->stats; }
memory_snapshot engine::snapshot() const { return impl_->snapshot(); }
int engine::device() const noexcept { return impl_->config.device; }
const engine_config& engine::config() const noexcept { return impl_->config; }
std::size_t engine::physical_bytes() const noexcept { return impl_->mapped_bytes; }

void engine::set_allocation_log(std::ostream* out) {
  impl_->log = out != nullptr ? std::make_unique<allocation_log>(*out) : nullptr;
}

void engine::set_clock(std::function<std::uint64_t()> now) { impl_->clock = std::move(now); }

} // namespace gpumem::core
