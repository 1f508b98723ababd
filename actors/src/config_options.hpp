#pragma once
// gpumem's options as one table (group, name, kind, allowed forms, default, help),
// looked up by the files that declare, parse and read them. Internal to the library.

#include <cstdint>
#include <string>
#include <string_view>

namespace gpumem::actors::detail {

// How an option's value is written. `declared` is the type CAF parses the command
// line with; the INI file's values are read raw from `content` whatever it declared.
enum class value_kind {
  integer,     // declared int64_t
  fraction,    // declared double; an integer is accepted too (1 is 1.0)
  boolean,     // declared std::string so that --key=false works (CAF 0.17 treats a
               // bool option as a flag that takes no value)
  text,        // declared std::string
  byte_size,   // declared std::string: "256M" on the command line
  text_list,   // declared std::vector<std::string>: --key=a,b
  size_list,   // declared std::vector<std::string>: --key=1G,512M
  entry_list,  // "tag=strategy" entries, declared std::string: CAF's list parser
               // rejects '=' inside unquoted elements, so the command line takes
               // --key=kv_cache=dedicated,weights=pooled and is split here
};

struct option_spec {
  const char* group;
  const char* name;
  value_kind kind;
  const char* form;     // the allowed forms, for help and error messages
  const char* fallback; // the default, as written in the INI file
  const char* help;
  std::int64_t min = 0;  // integers: the allowed range
  std::int64_t max = 0;
};

/// The dotted key: "gpumem.pressure.warning".
std::string full_key(const option_spec& spec);
/// The option with that dotted key, or null where none has it.
const option_spec* find_spec(std::string_view key);
/// Whether some option is in `group` ("gpumem.engine").
bool known_group(std::string_view group);
/// Every group, comma-separated, in the table's order.
std::string known_groups();
/// The option names of one group, comma-separated, in the table's order.
std::string keys_of_group(std::string_view group);

} // namespace gpumem::actors::detail
