// GRE between the legs of proxied calls (RFC 2637 4.1), without I/O: an IPv4 packet in,
// where it goes and its new GRE out. The Key is rewritten to the other peer's Call ID;
// sequence and acknowledgement numbers are carried unchanged, end to end, so each PPP peer
// keeps its own window and the proxy keeps no per-packet state. (The kernel fast path for
// proxied calls is not built yet: every packet passes here.)
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/counter_list.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"
#include "proxy/call_book.hpp"

namespace pptp::proxy {

enum class GreDrop : std::uint8_t {
  Malformed,    // not IPv4, not enhanced GRE
  UnknownCall,  // no routed call has this Key
  WrongSource,  // the Key is a call's, the sender is not that call's peer (spoofed or stale)
};
inline constexpr std::size_t kGreDropCount = 3;
std::string_view name_of(GreDrop d);

struct GreForward {
  Leg toward = Leg::Server;
  wire::Ipv4Address source;       // 0: the router's own address (the kernel picks it)
  wire::Ipv4Address destination;
  std::vector<std::uint8_t> gre;  // the GRE header and payload, Key rewritten
  std::uint16_t call = 0;         // the call (GreRoute::call), for its policy
  std::size_t payload_offset = 0;  // where the PPP payload starts in `gre`
};

Result<GreForward, GreDrop> relay_gre(const CallBook& book, Bytes ipv4_packet);

// What the proxy's GRE socket did (proxy_server.cpp): the status file's `gre`, the metrics'.
#define PPTP_PROXY_GRE_COUNTERS(X)                                                       \
  X(to_server, "to_server", "GRE packets relayed client -> server")                      \
  X(to_client, "to_client", "GRE packets relayed server -> client")                      \
  X(malformed, "malformed", "not enhanced GRE (dropped)")                                \
  X(unknown_call, "unknown_call", "a Key that is no routed call's (dropped)")            \
  X(wrong_source, "wrong_source", "a call's Key from another sender (dropped)")          \
  X(send_errors, "send_errors", "sendto failed, or would have blocked (dropped)")         \
  X(policy_dropped, "policy_dropped", "GRE of a call the policy cut, or before its user was decided")

struct GreCounters {
  PPTP_PROXY_GRE_COUNTERS(PPTP_COUNTER_FIELD)
};
template <class F>
void visit_gre_counters(const GreCounters& c, F&& f) {
  PPTP_PROXY_GRE_COUNTERS(PPTP_COUNTER_VISIT)
}

}  // namespace pptp::proxy
