// The reader's checks of one raw value of each kind, and of every key under gpumem;
// each refusal names the key and where its value came from.

#include "config_reader.hpp"

#include <cmath>
#include <sstream>

#include <caf/atom.hpp>

namespace gpumem::actors::detail {

std::string render_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string render_value(const caf::config_value& value) {
  if (auto real = caf::get_if<caf::config_value::real>(&value.get_data()))
    return render_number(*real);
  return caf::to_string(value);
}

// -- refusing -----------------------------------------------------------------------

void reader::fail(const std::string& key, const std::string& what) const {
  throw refused{config_error{key, key + ": " + what + origin_.where(key)}};
}

void reader::expected(const std::string& key, const caf::config_value& got) const {
  const auto* spec = find_spec(key);
  fail(key, std::string("expected ") + (spec ? spec->form : "another value") + ", got "
                + render_value(got));
}

const caf::config_value* reader::lookup(const caf::settings& settings, std::string_view key) {
  const caf::settings* dict = &settings;
  for (;;) {
    auto dot = key.find('.');
    auto part = key.substr(0, dot);
    auto i = dict->find(part);
    if (i == dict->end())
      return nullptr;
    if (dot == std::string_view::npos)
      return &i->second;
    dict = caf::get_if<caf::config_value::dictionary>(&i->second.get_data());
    if (dict == nullptr)
      return nullptr;
    key.remove_prefix(dot + 1);
  }
}

// -- one value of each kind, or the fallback where unset ----------------------------

std::int64_t reader::integer(const std::string& key, std::int64_t fallback) const {
  auto value = find(key);
  return value ? integer_of(key, *value) : fallback;
}

double reader::fraction(const std::string& key, double fallback) const {
  auto value = find(key);
  return value ? fraction_of(key, *value) : fallback;
}

bool reader::boolean(const std::string& key, bool fallback) const {
  auto value = find(key);
  return value ? boolean_of(key, *value) : fallback;
}

std::string reader::text(const std::string& key, std::string fallback) const {
  auto value = find(key);
  return value ? text_of(key, *value) : fallback;
}

std::size_t reader::size(const std::string& key, std::size_t fallback) const {
  auto value = find(key);
  return value ? size_of(key, *value) : fallback;
}

std::vector<std::string> reader::text_list(const std::string& key,
                                           std::vector<std::string> fallback) const {
  auto value = find(key);
  return value ? text_list_of(key, *value) : fallback;
}

std::vector<std::size_t> reader::size_list(const std::string& key,
                                           std::vector<std::size_t> fallback) const {
  auto value = find(key);
  return value ? size_list_of(key, *value) : fallback;
}

std::vector<std::string> reader::entry_list(const std::string& key) const {
  auto value = find(key);
  return value ? entry_list_of(key, *value) : std::vector<std::string>{};
}

// -- checking -----------------------------------------------------------------------

void reader::check(const option_spec& spec, const caf::config_value& value) const {
  auto key = full_key(spec);
  switch (spec.kind) {
    case value_kind::integer: integer_of(key, value); break;
    case value_kind::fraction: fraction_of(key, value); break;
    case value_kind::boolean: boolean_of(key, value); break;
    case value_kind::text: text_of(key, value); break;
    case value_kind::byte_size: size_of(key, value); break;
    case value_kind::text_list: text_list_of(key, value); break;
    case value_kind::size_list: size_list_of(key, value); break;
    case value_kind::entry_list: entry_list_of(key, value); break;
  }
}

void reader::check_all(const caf::settings& settings) const {
  auto root = lookup(settings, "gpumem");
  if (root == nullptr)
    return;
  auto dict = caf::get_if<caf::config_value::dictionary>(&root->get_data());
  if (dict == nullptr)
    fail("gpumem", "expected a group of options ([gpumem] section), got " + render_value(*root));
  walk("gpumem", *dict);
}

void reader::walk(const std::string& group, const caf::config_value::dictionary& dict) const {
  for (const auto& [name, value] : dict) {
    auto key = group + "." + name;
    if (const auto* spec = find_spec(key)) {
      check(*spec, value);
      continue;
    }
    auto sub = caf::get_if<caf::config_value::dictionary>(&value.get_data());
    if (sub != nullptr && known_group(key)) {
      walk(key, *sub);
      continue;
    }
    if (sub != nullptr) {  // an unknown group: name its first key
      auto leaf = key;
      while (sub != nullptr && !sub->empty()) {
        leaf += "." + sub->begin()->first;
        sub = caf::get_if<caf::config_value::dictionary>(&sub->begin()->second.get_data());
      }
      fail(leaf, "unknown option: " + key + " is no group of options; the groups are: "
                   + known_groups());
    }
    fail(key, "unknown option; the options of " + group + " are: " + keys_of_group(group));
  }
}

// -- the kinds ----------------------------------------------------------------------

std::int64_t reader::integer_of(const std::string& key, const caf::config_value& value) const {
  const auto* spec = find_spec(key);
  auto number = caf::get_if<caf::config_value::integer>(&value.get_data());
  if (number == nullptr || (spec && (*number < spec->min || *number > spec->max)))
    expected(key, value);
  return *number;
}

double reader::fraction_of(const std::string& key, const caf::config_value& value) const {
  double result = 0;
  if (auto real = caf::get_if<caf::config_value::real>(&value.get_data()))
    result = *real;
  else if (auto number = caf::get_if<caf::config_value::integer>(&value.get_data()))
    result = static_cast<double>(*number);
  else
    expected(key, value);
  if (!std::isfinite(result))
    expected(key, value);
  return result;
}

bool reader::boolean_of(const std::string& key, const caf::config_value& value) const {
  if (auto flag = caf::get_if<caf::config_value::boolean>(&value.get_data()))
    return *flag;
  if (auto text = caf::get_if<caf::config_value::string>(&value.get_data())) {
    if (*text == "true")
      return true;
    if (*text == "false")
      return false;
  }
  expected(key, value);
}

std::string reader::text_of(const std::string& key, const caf::config_value& value) const {
  if (auto string = caf::get_if<caf::config_value::string>(&value.get_data()))
    return *string;
  if (auto atom = caf::get_if<caf::atom_value>(&value.get_data()))
    return caf::to_string(*atom);
  expected(key, value);
}

std::size_t reader::size_of(const std::string& key, const caf::config_value& value) const {
  if (auto number = caf::get_if<caf::config_value::integer>(&value.get_data())) {
    if (*number < 0)
      expected(key, value);
    return static_cast<std::size_t>(*number);
  }
  std::size_t bytes = 0;
  auto string = caf::get_if<caf::config_value::string>(&value.get_data());
  if (string == nullptr || !parse_byte_size(*string, bytes))
    expected(key, value);
  return bytes;
}

std::vector<std::string> reader::text_list_of(const std::string& key,
                                              const caf::config_value& value) const {
  auto list = caf::get_if<caf::config_value::list>(&value.get_data());
  if (list == nullptr)
    expected(key, value);
  std::vector<std::string> result;
  for (const auto& element : *list) {
    auto string = caf::get_if<caf::config_value::string>(&element.get_data());
    if (string == nullptr)
      expected(key, value);
    result.push_back(*string);
  }
  return result;
}

std::vector<std::size_t> reader::size_list_of(const std::string& key,
                                              const caf::config_value& value) const {
  auto list = caf::get_if<caf::config_value::list>(&value.get_data());
  if (list == nullptr)
    expected(key, value);
  std::vector<std::size_t> result;
  for (const auto& element : *list)
    result.push_back(size_of(key, element));
  return result;
}

std::vector<std::string> reader::entry_list_of(const std::string& key,
                                               const caf::config_value& value) const {
  if (auto string = caf::get_if<caf::config_value::string>(&value.get_data())) {
    std::vector<std::string> result;
    std::string_view rest = *string;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      result.push_back(trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos)
        break;
      rest.remove_prefix(comma + 1);
      if (rest.empty())
        result.emplace_back();
    }
    return result;
  }
  return text_list_of(key, value);
}

} // namespace gpumem::actors::detail
