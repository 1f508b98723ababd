// The allocation log: writing RMM's CSV with a Tag column, and reading it back, or
// RMM's own logs (no Tag column, wall-clock "H:M:S:us" times, "0x..." streams).

#include "gpumem/core/allocation_log.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <functional>
#include <istream>
#include <ostream>
#include <string_view>
#include <thread>

namespace gpumem::core {

namespace {

constexpr std::string_view header_with_tag = "Thread,Time,Action,Pointer,Size,Stream,Tag";
constexpr std::string_view rmm_header = "Thread,Time,Action,Pointer,Size,Stream";

/// RFC 4180 quoting, only where a tag needs it, so plain tags stay plain.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos)
    return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"')
      quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

/// Splits one CSV line; a quoted field may hold commas and doubled quotes.
/// Returns false on an unterminated quote.
bool split_csv(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return !quoted;
}

/// The whole of `text` as one number (std::from_chars; no sign, spaces or leftovers).
template <class T, class... Base>
bool parse_whole(std::string_view text, T& value, Base... base) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base...);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

/// Decimal, or hexadecimal with a 0x prefix (RMM writes pointers and streams so).
bool parse_number(std::string_view text, std::uint64_t& value) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
    return parse_whole(text.substr(2), value, 16);
  return parse_whole(text, value);
}

/// Hexadecimal, with or without the 0x prefix.
bool parse_pointer(std::string_view text, std::uint64_t& value) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
    text.remove_prefix(2);
  return parse_whole(text, value, 16);
}

/// Seconds as a plain number, or RMM's wall-clock "H:M:S:us" (also "H:M:S.us"),
/// read as seconds since midnight.
bool parse_time(std::string_view text, double& seconds) {
  auto first = text.find(':');
  if (first == std::string_view::npos)
    return parse_whole(text, seconds) && std::isfinite(seconds) && seconds >= 0;
  auto second = text.find(':', first + 1);
  if (second == std::string_view::npos)
    return false;
  auto rest = text.substr(second + 1);
  auto point = rest.find_first_of(":.");
  unsigned hours = 0, minutes = 0, whole = 0;
  if (!parse_whole(text.substr(0, first), hours)
      || !parse_whole(text.substr(first + 1, second - first - 1), minutes)
      || !parse_whole(rest.substr(0, point), whole) || minutes > 59 || whole > 60)
    return false;
  double fraction = 0;  // the digits after the separator, as a fraction of a second
  if (point != std::string_view::npos) {
    auto digits = rest.substr(point + 1);
    std::uint64_t value = 0;
    if (digits.size() > 9 || !parse_whole(digits, value))
      return false;
    fraction = static_cast<double>(value) / std::pow(10.0, static_cast<double>(digits.size()));
  }
  seconds = hours * 3600.0 + minutes * 60.0 + whole + fraction;
  return true;
}

bool parse_action(std::string_view text, log_action& action) {
  if (text == "allocate")
    action = log_action::allocate;
  else if (text == "free" || text == "deallocate")  // RMM has written both
    action = log_action::free;
  else if (text == "allocate failure")
    action = log_action::allocate_failure;
  else
    return false;
  return true;
}

engine_error line_error(std::size_t line, const std::string& problem) {
  return engine_error(engine_errc::invalid_config,
                      "allocation log line " + std::to_string(line) + ": " + problem);
}

std::string quote(std::string_view text) {
  // Appended piece by piece: "'" + std::string(text) trips GCC 12's -Wrestrict.
  std::string quoted(1, '\'');
  quoted.append(text);
  quoted += '\'';
  return quoted;
}

} // namespace

const char* to_string(log_action action) noexcept {
  switch (action) {
  case log_action::allocate: return "allocate";
  case log_action::free: return "free";
  case log_action::allocate_failure: return "allocate failure";
  }
  return "unknown";
}

void write_log_header(std::ostream& out) {
  out << header_with_tag << '\n';
}

void write_log_entry(std::ostream& out, const log_entry& e) {
  // Sized by a first pass: a time the reader accepts may have hundreds of digits
  // (1e200 s), and a fixed buffer would cut the line short.
  auto format = [&](char* buffer, std::size_t size) {
    return std::snprintf(buffer, size, "%llu,%.6f,%s,0x%llx,%zu,%llu,",
                         static_cast<unsigned long long>(e.thread), e.time, to_string(e.action),
                         static_cast<unsigned long long>(e.pointer), e.size,
                         static_cast<unsigned long long>(e.stream));
  };
  std::string fields(static_cast<std::size_t>(format(nullptr, 0)), '\0');
  format(fields.data(), fields.size() + 1);
  out << fields << csv_field(e.tag) << '\n';
}

allocation_log::allocation_log(std::ostream& out)
  : out_(out), start_(std::chrono::steady_clock::now()) {
  write_log_header(out_);
}

void allocation_log::record(log_action action, cuda::device_ptr pointer, std::size_t size,
                            std::string_view tag) {
  log_entry e;
  // Hashing the id gives a number that is stable for the thread's lifetime.
  e.thread = std::hash<std::thread::id>{}(std::this_thread::get_id());
  e.time = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  e.action = action;
  e.pointer = pointer;
  e.size = size;
  e.tag = tag;
  write_log_entry(out_, e);
}

engine_result<std::vector<log_entry>> read_allocation_log(std::istream& in) {
  std::vector<log_entry> entries;
  std::vector<std::string> fields;
  std::string line;
  std::size_t number = 0;
  std::size_t columns = 0;  // 0 until the header is read

  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;  // blank lines, e.g. a trailing one
    if (columns == 0) {
      if (line == header_with_tag)
        columns = 7;
      else if (line == rmm_header)
        columns = 6;
      else
        return line_error(number, "expected the header " + std::string(header_with_tag)
                                    + " (or RMM's, without Tag), got " + quote(line));
      continue;
    }
    if (!split_csv(line, fields))
      return line_error(number, "unterminated quote");
    if (fields.size() != columns)
      return line_error(number, "expected " + std::to_string(columns) + " fields, got "
                                  + std::to_string(fields.size()));
    log_entry entry;
    std::uint64_t value = 0;
    if (!parse_number(fields[0], entry.thread))
      return line_error(number, "Thread " + quote(fields[0]) + " is not a number");
    if (!parse_time(fields[1], entry.time))
      return line_error(number, "Time " + quote(fields[1])
                                  + " is neither seconds nor H:M:S:microseconds");
    if (!parse_action(fields[2], entry.action))
      return line_error(number, "Action " + quote(fields[2])
                                  + " is not allocate, free or allocate failure");
    if (!parse_pointer(fields[3], value))
      return line_error(number, "Pointer " + quote(fields[3]) + " is not hexadecimal");
    entry.pointer = static_cast<cuda::device_ptr>(value);
    if (!parse_whole(std::string_view(fields[4]), value))
      return line_error(number, "Size " + quote(fields[4]) + " is not a byte count");
    entry.size = static_cast<std::size_t>(value);
    if (!parse_number(fields[5], entry.stream))
      return line_error(number, "Stream " + quote(fields[5]) + " is not a number");
    entry.tag = columns == 7 && !fields[6].empty() ? fields[6] : std::string("default");
    entries.push_back(std::move(entry));
  }
  if (columns == 0)
    return line_error(number + 1, "the log is empty: expected the header "
                                    + std::string(header_with_tag));
  return entries;
}

} // namespace gpumem::core
