// The status as plain values (docs/daemon.md, "Status file"): the packet loop copies it from
// the gateway (Gateway::status_snapshot, cheap: no text, no JSON), and any thread formats it
// (status_json) while the loop goes on. It owns every value it holds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "alg/track/tracker.hpp"
#include "gateway/counters.hpp"
#include "nat/call_id_translator.hpp"
#include "policy/policy.hpp"

namespace pptp::gateway {

struct CallPolicySnapshot {
  policy::Outcome outcome = policy::Outcome::Allow;
  std::string rule;
  std::string user;  // empty: no user charged
};

struct CallSnapshot {
  std::uint64_t id = 0;
  track::CallOrigin origin = track::CallOrigin::Outgoing;
  track::CallState state{};
  std::optional<std::uint16_t> pns_call_id, outside_call_id, pac_call_id;
  track::GreFlowStats gre_to_pac, gre_to_pns;
  std::optional<std::string> user;  // the PPP name, printable
  bool fast_path = false;
  std::optional<CallPolicySnapshot> policy;
};

struct ConnectionSnapshot {
  std::uint64_t id = 0;
  wire::Endpoint pns, pac;
  std::optional<wire::Ipv4Address> outside;
  track::ConnectionState state{};
  std::vector<CallSnapshot> calls;
};

struct PolicySnapshot {
  std::string file;
  std::size_t rules = 0, users = 0;
};

struct StatusSnapshot {
  std::vector<ConnectionSnapshot> connections;  // the live ones
  std::size_t calls = 0;
  std::vector<std::pair<std::string_view, std::uint64_t>> anomalies;  // names from kAnomalyTable
  GatewayCounters counters;
  nat::NatCounters nat;
  std::size_t nat_mapped = 0;
  std::size_t nat_held = 0;  // outside Call IDs held after a reuse while clearing
  std::size_t nat_parked = 0;  // outside Call IDs kept for calls that idled out on a live connection
  bool fast_path_enabled = false;
  std::size_t fast_path_calls = 0, fast_path_adopted = 0;
  std::optional<PolicySnapshot> policy;
  std::size_t memory_budget_bytes = 0, memory_used_bytes = 0, memory_sources = 0;
};

// The status file's gateway part, from a snapshot (status_view.cpp).
nlohmann::json status_json(const StatusSnapshot& s);
// The same without "connections": small whatever the calls, the part stream_status
// (status_stream.hpp) dumps as it is.
nlohmann::json status_summary_json(const StatusSnapshot& s);

}  // namespace pptp::gateway
