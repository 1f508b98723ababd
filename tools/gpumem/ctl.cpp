#include "ctl.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <future>

#include "gpumem/cuda/byte_units.hpp"
#include "http_call.hpp"
#include "whole_file.hpp"

namespace gpumem::tool {

namespace {

using nlohmann::json;

constexpr int refused_exit = ctl_refused_exit, usage_exit = ctl_usage_exit,
              unreachable_exit = ctl_unreachable_exit;

/// "tags=a&tags=b" with each name percent-encoded.
std::string tag_query(const std::vector<std::string>& tags) {
  std::string out;
  for (const auto& tag : tags) {
    out += out.empty() ? "" : "&";
    out += "tags=";
    for (unsigned char c : tag) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        char escaped[4];
        std::snprintf(escaped, sizeof escaped, "%%%02X", c);
        out += escaped;
      }
    }
  }
  return out;
}

struct call {
  std::string method, path, doing;  // doing: the progress line of a transition
};

call call_for(const ctl_options& o) {
  auto device = o.device >= 0 ? "?device=" + std::to_string(o.device) : std::string{};
  if (o.command == "status")
    return {"GET", "/v1/status", ""};
  if (o.command == "stats")
    return {"GET", "/v1/stats", ""};
  if (o.command == "snapshot")
    return {"GET", "/v1/snapshot" + device, ""};
  if (o.command == "map")
    return {"GET", "/v1/map" + device, ""};
  if (o.command == "trim")
    return {"POST", "/v1/trim" + device, ""};
  if (o.command == "defragment")
    return {"POST", "/v1/defragment" + device, ""};
  auto tags = tag_query(o.tags);
  if (o.command == "sleep")
    return {"POST", "/sleep?level=" + std::to_string(o.level) + (tags.empty() ? "" : "&" + tags),
            "sleeping at level " + std::to_string(o.level)};
  return {"POST", "/wake_up" + (tags.empty() ? "" : "?" + tags), "waking"};
}

/// "slept kv_cache, weights: 64 MiB backed up, ... in 0.29 s (220 MiB/s)".
std::string summary(const std::string& command, const json& r) {
  auto bytes = [&](const char* key) {
    return format_bytes(static_cast<std::size_t>(r.value(key, std::uint64_t{0})));
  };
  std::string tags;
  for (const auto& t : r.value("tags", json::array()))
    tags += (tags.empty() ? "" : ", ") + t.get<std::string>();
  char seconds[64];
  std::snprintf(seconds, sizeof seconds, "%.3f s", r.value("seconds", 0.0));
  auto rate = format_bytes(static_cast<std::size_t>(r.value("bandwidth_bytes_per_second", 0.0)));
  if (command == "sleep")
    return "slept " + (tags.empty() ? std::string("nothing") : tags) + ": " + bytes("bytes_backed_up")
           + " backed up, " + bytes("bytes_discarded") + " discarded, " + bytes("bytes_released")
           + " released in " + seconds + " (" + rate + "/s)";
  return "woke " + (tags.empty() ? std::string("nothing (nothing slept)") : tags) + ": "
         + bytes("bytes_mapped") + " mapped, " + bytes("bytes_restored") + " restored in " + seconds
         + " (" + rate + "/s)";
}

/// The page of GET /v1/map to --out, whole or not at all.
int write_map(const ctl_options& o, const std::string& page) {
  if (page.rfind("<!DOCTYPE html>", 0) != 0) {
    std::fprintf(stderr, "gpumem ctl map: the answer is not the memory map page: %.200s\n",
                 page.c_str());
    return unreachable_exit;
  }
  if (o.out == "-") {
    std::fwrite(page.data(), 1, page.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : refused_exit;
  }
  if (!write_whole_file(o.out, page)) {
    std::fprintf(stderr, "gpumem ctl map: cannot write '%s'\n", o.out.c_str());
    return refused_exit;
  }
  std::fprintf(stderr, "gpumem ctl: wrote the memory map (%s) to %s\n",
               format_bytes(page.size()).c_str(), o.out.c_str());
  return 0;
}

} // namespace

int run_ctl(const ctl_options& o) {
  if (!o.node.empty() || !o.cluster.empty())
    return run_ctl_remote(o);
  auto url = parse_http_url(o.url);
  if (!url) {
    std::fprintf(stderr, "gpumem ctl: --url expects http://host:port, got '%s'\n", o.url.c_str());
    return usage_exit;
  }
  if (o.command == "snapshot" && o.device < 0) {
    std::fprintf(stderr, "gpumem ctl snapshot: which device? --device N\n");
    return usage_exit;
  }
  auto c = call_for(o);

  // The request runs on a thread of its own; this one shows how long it has run.
  auto answer = std::async(std::launch::async,
                           [&] { return http_request(*url, c.method, c.path, "", o.timeout); });
  if (!c.doing.empty()) {
    const bool live = isatty(STDERR_FILENO) != 0;
    std::fprintf(stderr, "gpumem ctl: %s ...%s", c.doing.c_str(), live ? "" : "\n");
    for (int s = 1; answer.wait_for(std::chrono::seconds{1}) != std::future_status::ready; ++s)
      if (live)
        std::fprintf(stderr, "\rgpumem ctl: %s ... %d s", c.doing.c_str(), s);
    if (live)
      std::fprintf(stderr, "\n");
  }
  auto result = answer.get();
  if (auto* why = std::get_if<std::string>(&result)) {
    std::fprintf(stderr, "gpumem ctl: %s\n", why->c_str());
    return unreachable_exit;
  }
  const auto& r = std::get<http_result>(result);
  auto doc = json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    if (doc.is_object() && doc.contains("error"))
      std::fprintf(stderr, "gpumem ctl %s: %s: %s (HTTP %u)\n", o.command.c_str(),
                   doc.value("error", "").c_str(), doc.value("message", "").c_str(), r.status);
    else
      std::fprintf(stderr, "gpumem ctl %s: HTTP %u: %s\n", o.command.c_str(), r.status, r.body.c_str());
    return refused_exit;
  }
  if (o.command == "map")
    return write_map(o, r.body);
  if (doc.is_discarded()) {
    std::fprintf(stderr, "gpumem ctl %s: the answer is not JSON: %.200s\n", o.command.c_str(),
                 r.body.c_str());
    return unreachable_exit;
  }
  std::printf("%s\n", doc.dump(2).c_str());
  if (!c.doing.empty())
    std::fprintf(stderr, "gpumem ctl: %s\n", summary(o.command, doc).c_str());
  return 0;
}

} // namespace gpumem::tool
