#pragma once
// Prometheus's text exposition format 0.0.4, written by hand: each family's HELP and
// TYPE once, then its samples; label values and help text escaped as the format says.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpumem::control {

/// The Content-Type of the format.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

using labels = std::vector<std::pair<std::string_view, std::string>>;

class prometheus_text {
public:
  /// Starts a family: `type` is "gauge", "counter", "summary" or "histogram".
  void family(std::string_view name, std::string_view type, std::string_view help);
  /// A sample of the current family (its name, or with a suffix: "_sum", "_count").
  void sample(std::string_view name, const labels& l, double value);
  /// A histogram's samples for one set of labels: `counts[i]` values at most
  /// `upper_bounds[i]` (one more count, above every bound), written cumulative as
  /// _bucket{le} up to +Inf, then _sum and _count. No buckets: only +Inf (`count`).
  void histogram(std::string_view name, const labels& l, const std::vector<double>& upper_bounds,
                 const std::vector<std::uint64_t>& counts, double sum, std::uint64_t count);

  const std::string& text() const noexcept { return out_; }

private:
  std::string out_;
};

} // namespace gpumem::control
