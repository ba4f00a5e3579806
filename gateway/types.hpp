// What goes in and out of the gateway: a packet's meta data, its verdict, held packets
// released, fast-path changes, and the options.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "alg/track/tracker.hpp"
#include "gateway/budgets.hpp"
#include "nat/binding.hpp"
#include "policy/policy.hpp"

namespace pptp::gateway {

enum class Action : std::uint8_t {
  Accept,
  Drop,
  Hold,  // no verdict yet: the gateway keeps a copy and hands it back via take_released()
};

struct PacketMeta {
  double time = 0;
  std::uint64_t packet_id = 0;  // the queue's id, handed back with a held packet
  // From conntrack: the address the control connection's client shows outside (the reply
  // tuple's destination). Absent when the packet carries no conntrack entry.
  std::optional<wire::Ipv4Address> outside_address;
};

struct Verdict {
  Action action = Action::Accept;
  bool modified = false;  // the packet bytes were rewritten in place
};

// A held packet, released: its verdict and its (possibly rewritten) bytes.
struct ReleasedPacket {
  std::uint64_t packet_id = 0;
  Action action = Action::Accept;
  bool modified = false;
  std::vector<std::uint8_t> bytes;
};

// A control connection whose conntrack entry the daemon puts back in ESTABLISHED, by its
// original tuple (the side that opened it first): a RST or FIN of it came in the window but
// not where the receiver takes it, and conntrack, before the queue, may have taken it
// (docs/packet-path.md, "Conntrack after a RST the tracker ignored").
struct ConntrackKeep {
  wire::Endpoint source;
  wire::Endpoint destination;
};

// A client GRE entry in conntrack that a new call's client GRE would clash with, by its reply
// tuple: the server to the public address, source Key the server's Call ID (RFC 2637 4.1),
// destination Key 0 (no helper keymap). The kernel does not remap GRE Keys without a PPTP
// master entry, so while another inside host's entry lives (30 s unanswered, refreshed by its
// packets in conntrack before the queue, even those the gateway then drops) the new call's
// GRE fails to confirm and is dropped after the gateway accepted it (s36 review R1).
struct StaleGre {
  wire::Ipv4Address server;
  wire::Ipv4Address outside;
  std::uint16_t server_call_id = 0;
};

// The fast path's view of a call and of the kernel's counters: one type with nftables/.
using OffloadedCall = nat::CallBinding;
using OffloadCount = nat::BindingCount;

struct OffloadChange {
  bool add = true;  // false: remove its elements
  OffloadedCall call;
};

// Connection ids for adopted calls (no control connection known): far above the tracker's.
inline constexpr std::uint64_t kAdoptedConnectionBase = std::uint64_t{1} << 40;

struct GatewayOptions {
  bool allow_unknown_gre = false;  // migration switch: pass GRE that matches no call
  // Hand established, authorised calls to the kernel (take_offload_changes()); the daemon
  // sets it once the fast-path sets are usable.
  bool fast_path = false;
  track::Timeouts timeouts;
  // Segments with a bad TCP checksum are not parsed, rewritten or repaired. The queue hands
  // over complete checksums (nfnetlink_queue resolves partial ones without the GSO flag);
  // the fuzzer turns this off to reach the rest of the path.
  bool verify_checksums = true;
  // The wall time rules with a time window are judged at; empty: the local clock.
  std::function<policy::WallTime()> wall_clock;
  // The memory budget and the per-source budgets (docs/reliability.md).
  BudgetLimits budgets;
};

// Where the packets carry no conntrack data, the daemon asks conntrack once per control
// connection which public address the masquerade gave it.
class OutsideResolver {
 public:
  virtual ~OutsideResolver() = default;
  virtual std::optional<wire::Ipv4Address> outside_address(const wire::Endpoint& pns, const wire::Endpoint& pac) = 0;
};

}  // namespace pptp::gateway
