#include "prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace gpumem::control {

namespace {

// Help text escapes '\' and newline; label values also '"'.
void escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
}

// Go's ParseFloat reads these: integers exactly, others shortest round-trip.
void number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char text[32];
    auto end = std::to_chars(text, text + sizeof text, v).ptr;
    out.append(text, end);
  }
}

} // namespace

void prometheus_text::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ");
  escaped(out_, help, false);
  out_.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

void prometheus_text::sample(std::string_view name, const labels& l, double value) {
  out_.append(name);
  if (!l.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < l.size(); ++i) {
      out_.append(i == 0 ? "" : ",").append(l[i].first).append("=\"");
      escaped(out_, l[i].second, true);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  number(out_, value);
  out_ += '\n';
}

void prometheus_text::histogram(std::string_view name, const labels& l,
                                const std::vector<double>& upper_bounds,
                                const std::vector<std::uint64_t>& counts, double sum,
                                std::uint64_t count) {
  std::string bucket = std::string(name) + "_bucket";
  labels with_le = l;
  with_le.emplace_back("le", "");
  std::uint64_t below = 0;
  if (counts.size() == upper_bounds.size() + 1) {
    for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
      below += counts[i];
      with_le.back().second.clear();
      number(with_le.back().second, upper_bounds[i]);
      sample(bucket, with_le, double(below));
    }
    count = below + counts.back();
  }
  with_le.back().second = "+Inf";
  sample(bucket, with_le, double(count));
  sample(std::string(name) + "_sum", l, sum);
  sample(std::string(name) + "_count", l, double(count));
}

} // namespace gpumem::control
