// vLLM's and SGLang's sleep and wake routes. A sleep or wake is the runtime's own
// collective transition (all devices or none); the answer comes when it is done and
// carries its report. Before it starts, the route refuses what would change nothing
// or what it cannot do, changing nothing: a tag no device knows (400), a sleep or
// wake already running (409), tags that all sleep already (409).

#include <algorithm>
#include <optional>
#include <set>
#include <variant>

#include <utility>  // before Boost.Asio (Boost 1.74 + GCC 12)

#include <boost/asio/use_awaitable.hpp>

#include "gpumem/messages/json.hpp"
#include "routes.hpp"

namespace gpumem::control {

namespace asio = boost::asio;
namespace m = messages;
using nlohmann::json;

namespace {

/// What the runtime holds now: every tag each device knows, and which sleep.
struct runtime_view {
  m::cluster_statistics stats;
  m::balancer_status status;

  std::set<std::string> known_tags() const {
    std::set<std::string> tags;
    for (const auto& d : stats.devices)
      for (const auto& t : d.tags)
        tags.insert(t.tag);
    return tags;
  }

  /// Whether `tag` is awake on some device that knows it.
  bool awake_somewhere(const std::string& tag) const {
    for (const auto& d : stats.devices) {
      auto known = std::any_of(d.tags.begin(), d.tags.end(),
                               [&](const m::tag_stat_grid& t) { return t.tag == tag; });
      const auto* s = find_status(d.device);
      if (known && s != nullptr
          && std::find(s->asleep_tags.begin(), s->asleep_tags.end(), tag) == s->asleep_tags.end())
        return true;
    }
    return false;
  }

  /// A device in a sleep or wake (another client's, or a pressure offload's).
  std::optional<std::string> transition() const {
    for (const auto& d : status.devices)
      if (d.state == m::device_state::falling_asleep || d.state == m::device_state::waking
          || d.prepared_transaction != 0)
        return "device " + std::to_string(d.device) + " is "
               + (d.prepared_transaction != 0 ? std::string("in a collective transition")
                                              : std::string(m::to_string(d.state)));
    return std::nullopt;
  }

private:
  const m::device_status* find_status(std::int32_t device) const {
    for (const auto& s : status.devices)
      if (s.device == device)
        return &s;
    return nullptr;
  }
};

/// The runtime's view, or the failure to get it as the reply.
asio::awaitable<std::variant<runtime_view, reply>> look(service& svc) {
  auto stats = co_await svc.memory.async_statistics(asio::use_awaitable);
  if (!stats)
    co_return failure_reply(stats.error());
  auto status = co_await svc.memory.async_status(asio::use_awaitable);
  if (!status)
    co_return failure_reply(status.error());
  co_return runtime_view{std::move(stats).value(), std::move(status).value()};
}

reply busy(const std::string& why) {
  return error_reply(http::status::conflict, "transition_in_progress",
                     why + "; try again when it is done");
}

/// Refuses names no device knows: the runtime would skip them, and the caller would
/// believe them asleep.
void check_known(const runtime_view& view, const std::vector<std::string>& tags) {
  auto known = view.known_tags();
  for (const auto& tag : tags)
    if (!known.count(tag)) {
      std::string list;
      for (const auto& k : known)
        list += (list.empty() ? "" : ", ") + k;
      throw request_error{http::status::bad_request, "unknown_tag",
                          "no device knows tag '" + tag + "' (known: "
                            + (list.empty() ? "none yet" : list) + ")"};
    }
}

asio::awaitable<reply> sleep_tags(service& svc, std::int32_t level, std::vector<std::string> tags) {
  transition_gate gate{svc};
  if (!gate)
    co_return busy("another sleep or wake through this server is running");
  auto looked = co_await look(svc);
  if (auto* failed = std::get_if<reply>(&looked))
    co_return std::move(*failed);
  const auto& view = std::get<runtime_view>(looked);
  if (auto running = view.transition())
    co_return busy(*running);
  check_known(view, tags);
  auto targets = tags;
  if (targets.empty())
    for (const auto& t : view.known_tags())
      targets.push_back(t);
  if (targets.empty()) {  // no device holds any tag yet: nothing to put to sleep
    auto body = to_json(std::vector<m::transition_report>{});
    body["level"] = level;
    co_return json_reply(body);
  }
  if (std::none_of(targets.begin(), targets.end(),
                      [&](const std::string& t) { return view.awake_somewhere(t); }))
    co_return error_reply(http::status::conflict, "already_asleep",
                          tags.empty() ? "every tag is asleep already; wake it first"
                                       : "the tags named are asleep already; wake them first");

  // Level 0 keeps everything it puts to sleep; it names its tags, so that a tag made
  // after this look stays awake instead of being slept without a backup.
  auto policy = level == 0 ? m::sleep_policy::backing_up(targets, targets)
                           : m::sleep_policy::at_level(level, std::move(tags));
  auto reports = co_await svc.memory.async_sleep(std::move(policy), asio::use_awaitable);
  if (!reports)
    co_return failure_reply(reports.error());
  auto body = to_json(*reports);
  body["level"] = level;
  co_return json_reply(body);
}

asio::awaitable<reply> wake_tags(service& svc, std::vector<std::string> tags) {
  transition_gate gate{svc};
  if (!gate)
    co_return busy("another sleep or wake through this server is running");
  auto looked = co_await look(svc);
  if (auto* failed = std::get_if<reply>(&looked))
    co_return std::move(*failed);
  const auto& view = std::get<runtime_view>(looked);
  if (auto running = view.transition())
    co_return busy(*running);
  check_known(view, tags);
  // Nothing asleep is no error: a wake is idempotent, as vLLM's is.
  auto reports = co_await svc.memory.async_wake_up(std::move(tags), asio::use_awaitable);
  if (!reports)
    co_return failure_reply(reports.error());
  co_return json_reply(to_json(*reports));
}

/// SGLang's optional body: nothing, {}, {"tags": null} or {"tags": ["weights", ...]}.
std::vector<std::string> body_tags(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    return {};
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded())
    throw request_error{http::status::bad_request, "bad_json", "the body is not JSON"};
  if (!doc.is_object())
    throw request_error{http::status::bad_request, "bad_json",
                        "the body must be an object like {\"tags\": [\"weights\"]}"};
  std::vector<std::string> tags;
  for (const auto& [key, value] : doc.items()) {
    if (key != "tags")
      throw request_error{http::status::bad_request, "bad_json",
                          "unknown field '" + key + "'; the body takes only \"tags\""};
    if (value.is_null())
      continue;
    if (!value.is_array() || !std::all_of(value.begin(), value.end(),
                                          [](const json& t) { return t.is_string(); }))
      throw request_error{http::status::bad_request, "bad_json",
                          "\"tags\" must be a list of tag names or null"};
    for (const auto& t : value)
      tags.push_back(t.get<std::string>());
  }
  return checked_tags(std::move(tags), "body");
}

} // namespace

asio::awaitable<reply> sleep_route(service& svc, const request& req) {
  req.params.allow_only({"level", "tags"});
  auto level = req.params.integer("level", 0, 2).value_or(1);  // vLLM's default
  auto tags = checked_tags(req.params.all("tags"), "query parameter 'tags'");
  co_return co_await sleep_tags(svc, static_cast<std::int32_t>(level), std::move(tags));
}

asio::awaitable<reply> wake_up_route(service& svc, const request& req) {
  req.params.allow_only({"tags"});
  co_return co_await wake_tags(svc, checked_tags(req.params.all("tags"), "query parameter 'tags'"));
}

asio::awaitable<reply> is_sleeping_route(service& svc, const request& req) {
  req.params.allow_only({});
  auto sleeping = co_await svc.memory.async_is_sleeping({}, asio::use_awaitable);
  if (!sleeping)
    co_return failure_reply(sleeping.error());
  co_return json_reply({{"is_sleeping", *sleeping}});
}

// SGLang releases weights and KV cache for a trainer: level 1, so that the weights'
// bytes come back at the same addresses on resume.
asio::awaitable<reply> release_memory_route(service& svc, const request& req) {
  req.params.allow_only({});
  co_return co_await sleep_tags(svc, 1, body_tags(req.body));
}

asio::awaitable<reply> resume_memory_route(service& svc, const request& req) {
  req.params.allow_only({});
  co_return co_await wake_tags(svc, body_tags(req.body));
}

} // namespace gpumem::control
