#include "alg/control/calls_table.hpp"

#include <cstdio>

namespace pptp::control {

namespace {
std::string text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string flow(const nlohmann::json& f) {
  return text(f.value("packets", nlohmann::json())) + "/" + text(f.value("bytes", nlohmann::json()));
}

std::string age(const nlohmann::json& seconds) {
  if (!seconds.is_number()) return "-";
  const auto s = static_cast<long long>(seconds.get<double>());
  char out[32];
  std::snprintf(out, sizeof out, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return out;
}
}  // namespace

std::string render_calls(const nlohmann::json& calls) {
  std::string out;
  char line[512];
  // Both Call IDs of the client's side (its own, and what the server sees) and the server's.
  std::snprintf(line, sizeof line, "%-6s %-21s %-21s %-16s %-11s %-9s %-9s %-9s %-9s %-16s %-16s %s\n", "ID",
                "CLIENT", "SERVER", "USER", "STATE", "CLIENT-ID", "SEEN-AS", "SERVER-ID", "AGE", "TO-SERVER p/B",
                "TO-CLIENT p/B", "PATH");
  out += line;
  for (const auto& c : calls) {
    const std::string path = text(c.value("path", nlohmann::json())) + (c.value("killed", false) ? " killed" : "");
    std::snprintf(line, sizeof line, "%-6s %-21s %-21s %-16s %-11s %-9s %-9s %-9s %-9s %-16s %-16s %s\n",
                  text(c.value("id", nlohmann::json())).c_str(), text(c.value("client", nlohmann::json())).c_str(),
                  text(c.value("server", nlohmann::json())).c_str(), text(c.value("user", nlohmann::json())).c_str(),
                  text(c.value("state", nlohmann::json())).c_str(),
                  text(c.value("pns_call_id", nlohmann::json())).c_str(),
                  text(c.value("outside_call_id", nlohmann::json())).c_str(),
                  text(c.value("pac_call_id", nlohmann::json())).c_str(),
                  age(c.value("age_seconds", nlohmann::json())).c_str(),
                  flow(c.value("to_server", nlohmann::json::object())).c_str(),
                  flow(c.value("to_client", nlohmann::json::object())).c_str(), path.c_str());
    out += line;
  }
  if (calls.empty()) out += "(no calls)\n";
  return out;
}

std::string render_replicated(const nlohmann::json& calls, const std::string& title) {
  if (!calls.is_array() || calls.empty()) return {};
  std::string out = "\n" + title + ":\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-21s %-21s %-16s %-9s %-9s %-9s %-15s %s\n", "CLIENT", "SERVER", "USER",
                "CLIENT-ID", "SEEN-AS", "SERVER-ID", "OUTSIDE", "VERDICT");
  out += line;
  for (const auto& c : calls) {
    std::snprintf(line, sizeof line, "%-21s %-21s %-16s %-9s %-9s %-9s %-15s %s\n",
                  text(c.value("client", nlohmann::json())).c_str(), text(c.value("server", nlohmann::json())).c_str(),
                  text(c.value("user", nlohmann::json())).c_str(), text(c.value("pns_call_id", nlohmann::json())).c_str(),
                  text(c.value("outside_call_id", nlohmann::json())).c_str(),
                  text(c.value("pac_call_id", nlohmann::json())).c_str(),
                  text(c.value("outside", nlohmann::json())).c_str(), text(c.value("verdict", nlohmann::json())).c_str());
    out += line;
  }
  return out;
}

}  // namespace pptp::control
