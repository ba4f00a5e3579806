// The gateway's own state beside the tracker's: one record per control connection and one
// per call, each in one struct (keyed by the tracker's ids).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "gateway/budgets.hpp"
#include "gateway/segment_hold.hpp"
#include "gateway/types.hpp"
#include "nat/rewrite.hpp"
#include "policy/admission.hpp"

namespace pptp::gateway {

// Per-direction arrays are indexed by track::Direction.
inline std::size_t index_of(track::Direction d) { return static_cast<std::size_t>(d); }

struct ConnectionRecord {
  wire::Ipv4Address outside;
  bool outside_known = false;                   // from conntrack; until then the PNS's own address
  std::array<nat::StreamPatches, 2> patches;    // by track::Direction
  std::array<SegmentHold, 2> held;              // by track::Direction
  std::optional<std::uint32_t> refused_sequence;  // the first call set-up we refused
  std::optional<double> closed_at;
  std::optional<policy::Charge> charge;         // what the connection holds of the limits
  BudgetShare budget;                           // what it holds of the budgets (budgets.hpp)
};

// A call's standing with the policy, from its set-up on.
struct CallPolicy {
  policy::Outcome outcome = policy::Outcome::Allow;
  std::string rule;
  policy::Charge charge;
};

// A call whose GRE the kernel forwards.
struct Offload {
  OffloadedCall call;
  wire::Endpoint pns, pac;
  std::uint16_t pns_call_id = 0;
  std::uint64_t to_client_seen = 0, to_server_seen = 0;  // the kernel's counters, last read
};

struct CallRecord {
  std::optional<CallPolicy> policy;  // under a policy
  std::optional<Offload> offload;    // while the kernel forwards its GRE
  std::uint8_t logged = 0;           // which lifecycle lines were written (kLogged*)
  // The name the PAC accepted that was last logged and judged: a re-authentication under
  // another name is judged again (issue "Integrity").
  std::optional<std::string> judged_user;
  std::optional<wire::Ipv4Address> budget_source;  // the source whose call budget it holds
};
inline constexpr std::uint8_t kLoggedEstablished = 1, kLoggedVerdict = 4;

}  // namespace pptp::gateway
