#include "alg/control/protocol.hpp"

#include <array>

namespace pptp::control {

namespace {
constexpr std::array<std::pair<Command, std::string_view>, 7> kCommands{{{Command::Calls, "calls"},
                                                                        {Command::Kill, "kill"},
                                                                        {Command::Reload, "reload"},
                                                                        {Command::Status, "status"},
                                                                        {Command::Metrics, "metrics"},
                                                                        {Command::Promote, "promote"},
                                                                        {Command::Demote, "demote"}}};

Result<KillSelector, std::string> kill_selector(const nlohmann::json& j) {
  KillSelector k;
  int given = 0;
  if (auto it = j.find("call"); it != j.end()) {
    if (!it->is_number_unsigned()) return unexpected(std::string("'call' must be a call id (a number)"));
    k.call = it->get<std::uint64_t>();
    ++given;
  }
  if (auto it = j.find("user"); it != j.end()) {
    if (!it->is_string() || it->get<std::string>().empty()) return unexpected(std::string("'user' must be a name"));
    k.user = it->get<std::string>();
    ++given;
  }
  if (auto it = j.find("client"); it != j.end()) {
    wire::Ipv4Address a;
    if (!it->is_string() || !wire::parse_ipv4_address(it->get<std::string>(), a)) {
      return unexpected(std::string("'client' must be an IPv4 address"));
    }
    k.client = a;
    ++given;
  }
  if (given != 1) return unexpected(std::string("kill needs exactly one of 'call', 'user', 'client'"));
  return k;
}
}  // namespace

std::string_view name_of(Command c) {
  for (const auto& [command, name] : kCommands) {
    if (command == c) return name;
  }
  return "?";
}

Result<Request, std::string> parse_request(std::string_view line) {
  if (line.size() > kMaxRequestBytes) return unexpected(std::string("request too long"));
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return unexpected(std::string("a request is one JSON object per line"));
  const auto it = j.find("command");
  if (it == j.end() || !it->is_string()) return unexpected(std::string("the request names no 'command'"));
  const std::string name = it->get<std::string>();
  for (const auto& [command, text] : kCommands) {
    if (text != name) continue;
    Request r{command, {}};
    if (command == Command::Kill) {
      auto k = kill_selector(j);
      if (!k) return unexpected(k.error());
      r.kill = std::move(*k);
    }
    if (const auto f = j.find("force"); command == Command::Promote && f != j.end()) {
      if (!f->is_boolean()) return unexpected(std::string("'force' is true or false"));
      r.force = f->get<bool>();
    }
    return r;
  }
  return unexpected("unknown command '" + name + "' (calls, kill, reload, status, metrics, promote, demote)");
}

std::string request_line(const Request& r) {
  nlohmann::json j{{"command", name_of(r.command)}};
  if (r.command == Command::Kill) {
    if (r.kill.call) j["call"] = *r.kill.call;
    if (r.kill.user) j["user"] = *r.kill.user;
    if (r.kill.client) j["client"] = wire::to_string(*r.kill.client);
  }
  if (r.command == Command::Promote && r.force) j["force"] = true;
  return j.dump();
}

std::string error_answer(std::string_view message) {
  // Names from the wire may hold any byte: replaced, never a throw.
  return nlohmann::json{{"ok", false}, {"error", message}}.dump(-1, ' ', false,
                                                                 nlohmann::json::error_handler_t::replace);
}

std::string ok_answer(nlohmann::json fields) {
  fields["ok"] = true;
  return fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace pptp::control
