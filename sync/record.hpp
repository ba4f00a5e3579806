// One replicated call (docs/ha.md): what a standby needs to carry a call on after a
// failover. Keyed by its control connection (the PNS's and PAC's endpoints, as the inside
// sees them) and the client's (PNS's) Call ID, which together name one call on one router.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alg/wire/ip.hpp"

namespace pptp::sync {

struct CallKey {
  wire::Endpoint pns;  // the client
  wire::Endpoint pac;  // the server (port 1723)
  std::uint16_t pns_call_id = 0;
  auto operator<=>(const CallKey&) const = default;
};
std::string to_string(const CallKey& k);

// The call's standing with the policy; NoPolicy when the daemon runs without one.
enum class PolicyVerdict : std::uint8_t { NoPolicy = 0, Allow = 1, Deny = 2, Pending = 3 };
inline constexpr std::uint8_t kMaxPolicyVerdict = 3;
std::string_view name_of(PolicyVerdict v);

// A user name is bounded like PAP's one-octet length (alg/wire/ppp.hpp).
inline constexpr std::size_t kMaxUserLength = 255;

struct CallState {
  CallKey key;
  wire::Ipv4Address outside;          // the public address the server sees
  std::uint16_t pac_call_id = 0;      // the server's Call ID (the Key of the client's GRE)
  std::uint16_t outside_call_id = 0;  // the client's Call ID as the server sees it
  PolicyVerdict verdict = PolicyVerdict::NoPolicy;
  std::string user;                   // the PPP name judged, empty if none
  std::uint64_t started_ms = 0;       // wall clock, milliseconds since the Unix epoch
  std::uint64_t updated_ms = 0;
  // Each direction's next expected TCP sequence number at a message boundary, by
  // track::Direction (PNS to PAC, PAC to PNS): where a promoted node resumes reading the
  // control connection. Absent when the stream was not at a boundary or had lost sync.
  bool positions_known = false;
  std::array<std::uint32_t, 2> next_sequence{};
  bool operator==(const CallState&) const = default;
};

// The head of a control message that a node passed in part, its Call ID field not whole in
// it (docs/ha.md, "A message split before its Call ID field"): the peer, taking the control
// connection over, reads the message whole from it and the rest. Best effort: unsequenced.
inline constexpr std::size_t kMaxHeadBytes = 15;  // the fields are at bytes 12-13 or 14-15 (RFC 2637 2.x)
struct MessageHead {
  wire::Endpoint pns;
  wire::Endpoint pac;
  std::uint8_t direction = 0;        // by track::Direction: 0 PNS to PAC, 1 PAC to PNS
  std::uint32_t sequence = 0;        // TCP sequence number of the message's first byte
  std::vector<std::uint8_t> bytes;   // 1 to kMaxHeadBytes, as the sender wrote them
  bool operator==(const MessageHead&) const = default;
};
// The one test of a head's fields, both for encoding and decoding (so the two cannot drift).
bool valid_head(const MessageHead& h);

}  // namespace pptp::sync
