// `pptp-alg status`: the status file as a table.
#include <cstdio>
#include <sstream>

#include "alg/daemon/daemon.hpp"

namespace pptp::daemon {

std::string render_status(const nlohmann::json& s) {
  std::ostringstream out;
  const auto text = [](const nlohmann::json& v) {
    if (v.is_null()) return std::string("-");
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
  };
  char line[512];
  std::snprintf(line, sizeof line, "%-5s %-21s %-21s %-15s %-12s %s\n", "CONN", "PNS (inside)", "PAC (server)",
                "OUTSIDE", "STATE", "CALLS");
  out << line;
  for (const auto& c : s.value("connections", nlohmann::json::array())) {
    std::snprintf(line, sizeof line, "%-5s %-21s %-21s %-15s %-12s %zu\n", text(c["id"]).c_str(),
                  text(c["pns"]).c_str(), text(c["pac"]).c_str(), text(c["outside"]).c_str(),
                  text(c["state"]).c_str(), c["calls"].size());
    out << line;
    for (const auto& call : c["calls"]) {
      std::snprintf(line, sizeof line,
                    "      call %-4s %-8s %-11s client Call ID %-5s -> server sees %-5s  server Call ID %-5s"
                    "  GRE to server %-6s to client %-6s user %s%s%s\n",
                    text(call["id"]).c_str(), text(call["origin"]).c_str(), text(call["state"]).c_str(),
                    text(call["pns_call_id"]).c_str(), text(call["outside_call_id"]).c_str(),
                    text(call["pac_call_id"]).c_str(), text(call["gre_to_pac"]["packets"]).c_str(),
                    text(call["gre_to_pns"]["packets"]).c_str(), text(call["user"]).c_str(),
                    call.contains("policy") ? ("  policy " + text(call["policy"]["verdict"]) + " (rule " +
                                               text(call["policy"]["rule"]) + ")").c_str()
                                            : "",
                    call.value("fast_path", false) ? "  [fast path]" : "");
      out << line;
    }
  }
  if (s.contains("packets")) out << "packets: " << s["packets"].dump() << "\n";
  if (s.contains("nat")) out << "nat: " << s["nat"].dump() << "\n";
  if (s.contains("policy") && !s["policy"].is_null()) out << "policy: " << s["policy"].dump() << "\n";
  if (s.contains("fast_path")) out << "fast_path: " << s["fast_path"].dump() << "\n";
  if (s.contains("anomalies")) out << "anomalies: " << s["anomalies"].dump() << "\n";
  if (s.contains("queue")) out << "queue: " << s["queue"].dump() << "\n";
  if (s.contains("ha")) out << "ha: " << s["ha"].dump() << "\n";  // with healings, healing_calls, ...
  return out.str();
}

}  // namespace pptp::daemon
