// The gateway: what the daemon does with each queued packet, without any I/O. It runs the
// packet through the tracker (the inside view of every control connection and call), keeps
// the Call-ID translation table, rewrites control messages and GRE, and returns a verdict.
// The netlink queue (nftables/) hands packets in and verdicts out; tests drive it directly.
//
// Where packets come from (docs/packet-path.md): TCP/1723 in the forward hook, so both
// directions show the inside addresses; GRE from the server to the router's own address in
// prerouting, before routing (untracked: conntrack cannot tell whose it is, so its
// destination and key are translated here); GRE from a client in the forward hook (tracked:
// the masquerade rule translates its source as for any packet).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "alg/track/tracker.hpp"
#include "nat/call_id_translator.hpp"
#include "nat/rewrite.hpp"
#include "policy/admission.hpp"
#include "policy/policy.hpp"

namespace pptp::daemon {

inline constexpr std::size_t kLogBurst = 20;         // log lines per anomaly kind per window
inline constexpr double kLogWindow = 10.0;           // seconds
// A control segment that ends inside a message is held until the message is whole, so that
// a Call ID rewrite reaches the bytes it belongs to. Bounded in count and time: a sender
// that waits for the ACK of the held part (Nagle) gets it released after kMaxHoldSeconds.
// A denied connection's SYN retransmissions are judged each time but logged once a minute.
inline constexpr double kDeniedLogInterval = 60.0;
inline constexpr std::size_t kMaxDeniedRemembered = 4096;
inline constexpr std::size_t kMaxHeldSegments = 8;  // per connection and direction
inline constexpr double kMaxHoldSeconds = 0.5;

struct GatewayOptions {
  bool allow_unknown_gre = false;  // migration switch: pass GRE that matches no call
  // Hand established, authorised calls to the kernel (take_offload_changes()); the daemon
  // sets it once the fast-path sets are usable.
  bool fast_path = false;
  track::Timeouts timeouts;
  // The wall time rules with a time window are judged at; empty: the local clock.
  std::function<policy::WallTime()> wall_clock;
};

// Where the packets carry no conntrack data, the daemon asks conntrack once per control
// connection which public address the masquerade gave it.
class OutsideResolver {
 public:
  virtual ~OutsideResolver() = default;
  virtual std::optional<wire::Ipv4Address> outside_address(const wire::Endpoint& pns, const wire::Endpoint& pac) = 0;
};

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

// A call whose GRE the kernel forwards (nftables/fastpath.hpp), as its elements say.
struct OffloadedCall {
  wire::Ipv4Address server;
  wire::Ipv4Address outside;  // the public address
  wire::Ipv4Address inside;   // the client
  std::uint16_t outside_call_id = 0, inside_call_id = 0, server_call_id = 0;
  bool operator==(const OffloadedCall&) const = default;
};

struct OffloadChange {
  bool add = true;  // false: remove its elements
  OffloadedCall call;
};

// Packets the kernel forwarded for an offloaded call since its elements were added: to the
// client (keyed by server, outside, outside_call_id) or to the server (inside, server,
// server_call_id).
struct OffloadCount {
  bool to_client = true;
  OffloadedCall key;
  std::uint64_t packets = 0, bytes = 0;
  std::optional<OffloadedCall> binding;  // the whole call, as stored with the element
};

// Connection ids for adopted calls (no control connection known): far above the tracker's.
inline constexpr std::uint64_t kAdoptedConnectionBase = std::uint64_t{1} << 40;

// What happened to packets, beyond the tracker's anomaly counters.
struct GatewayCounters {
  std::uint64_t control_segments = 0;
  std::uint64_t control_rewritten = 0;
  std::uint64_t gre_to_pns = 0;        // server to client
  std::uint64_t gre_to_pac = 0;        // client to server
  std::uint64_t gre_rewritten = 0;
  std::uint64_t gre_unknown_dropped = 0;
  std::uint64_t gre_unknown_passed = 0;  // allow_unknown_gre
  std::uint64_t gre_not_pptp_passed = 0;
  std::uint64_t malformed_dropped = 0;
  std::uint64_t other_passed = 0;
  std::uint64_t calls_refused = 0;       // no Call ID left toward the server
  std::uint64_t control_dropped = 0;     // segments of a refused call set-up
  std::uint64_t control_held = 0;        // segments held until their message was whole
  std::uint64_t control_refused = 0;     // too far ahead of a gap: dropped, sent again in order
  std::uint64_t hold_expired = 0;        // released by the time bound, not by the message
  // Policy (docs/policy.md).
  std::uint64_t connections_denied = 0;      // control connections the policy or a limit refused
  std::uint64_t control_policy_dropped = 0;  // their TCP segments
  std::uint64_t calls_denied = 0;            // call set-ups refused (rules or limits)
  std::uint64_t calls_cut = 0;               // calls denied after set-up: name, reload
  std::uint64_t gre_policy_dropped = 0;      // GRE of denied calls
  // Fast path.
  std::uint64_t calls_offloaded = 0;      // handed to the kernel
  std::uint64_t gre_offloaded_to_pns = 0;  // packets the kernel forwarded, by counters
  std::uint64_t gre_offloaded_to_pac = 0;
};

class Gateway final : private track::TrackerObserver {
 public:
  Gateway(GatewayOptions options, std::shared_ptr<spdlog::logger> log, OutsideResolver* resolver = nullptr);
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // `packet` starts at the IPv4 header and may be rewritten in place (same length).
  Verdict process(std::span<std::uint8_t> packet, const PacketMeta& meta);
  void expire(double now);
  void shutdown(double now);
  // Held packets whose verdict is now known (after process(), expire() and shutdown()).
  std::vector<ReleasedPacket> take_released();

  // Installs a policy (at start and on reload); nullptr: no policy, everything passes as
  // before. On reload, live calls keep their verdicts unless the policy says on_reload:
  // rejudge, in which case each is judged again and those now denied lose their GRE.
  void set_policy(std::shared_ptr<const policy::Policy> p);

  // Fast path: elements to add and remove since the last call; every offloaded call (to
  // re-arm its elements); and the kernel's counters, which keep offloaded calls alive.
  std::vector<OffloadChange> take_offload_changes();
  std::vector<OffloadedCall> offloaded_calls() const;
  void note_offload_counts(const std::vector<OffloadCount>& counts, double now);
  // After a restart: calls whose elements the previous daemon left in the kernel (their
  // bindings in `counts`). Their Call IDs are reserved and their GRE keeps flowing; they
  // stay while the kernel's counters move and end at the call idle timeout. Returns how
  // many were adopted.
  std::size_t adopt_offloaded(const std::vector<OffloadCount>& counts, double now);
  // The kernel refused the elements: stop offloading (GRE keeps flowing through the queue).
  void disable_fast_path(std::string_view reason);
  const policy::Policy* policy() const { return policy_.get(); }

  nlohmann::json status() const;
  const GatewayCounters& counters() const { return counters_; }
  const track::Tracker& tracker() const { return tracker_; }
  const nat::CallIdTranslator& translator() const { return translator_; }
  const policy::Admission& admission() const { return admission_; }

 private:
  struct ConnectionNat {
    wire::Ipv4Address outside;
    bool outside_known = false;  // from conntrack; until then the PNS's own address
    std::array<nat::StreamPatches, 2> patches;  // by track::Direction
    std::optional<std::uint32_t> refused_sequence;  // a call set-up we could not map
    std::optional<double> closed_at;
    struct Held {
      std::uint64_t packet_id;
      double since;
      std::vector<std::uint8_t> bytes;
    };
    std::array<std::vector<Held>, 2> held;  // by track::Direction
    std::optional<policy::Charge> charge;   // what the connection holds of the limits
  };
  // A call's standing with the policy, from its set-up on.
  struct CallPolicy {
    policy::Outcome outcome = policy::Outcome::Allow;
    std::string rule;
    policy::Charge charge;
  };
  void release_held(ConnectionNat& n, std::size_t direction, bool expired);

  struct PendingAllocation {
    std::uint64_t connection_id;
    std::uint16_t inside_call_id;
    std::uint32_t sequence;  // of the Call ID field in the stream
    track::Direction direction;
  };
  void allocate(const track::ControlConnection& c, const track::Call& call, const PendingAllocation& p);
  // A decision for a new connection or call: the rule's, or a limit's deny.
  struct Judgement {
    policy::Decision decision;
    policy::Charge who;
    policy::Outcome outcome;
    std::string reason;
  };
  template <typename Limit>
  Judgement judge_new(wire::Ipv4Address pns, wire::Ipv4Address pac, Limit&& limit) const;
  bool admit_call(const track::ControlConnection& c, const track::Call& call, const PendingAllocation& p);
  // Judges a new control connection; admitted, it is counted against the limits (the Charge).
  std::optional<policy::Charge> admit_connection(const wire::Endpoint& pns, const wire::Endpoint& pac, double now);
  void judge_again(const track::ControlConnection& c, const track::Call& call, CallPolicy& cp, std::string_view scope);
  void refuse_call(ConnectionNat& n, std::uint32_t sequence);
  void audit(std::string_view scope, policy::Outcome outcome, const std::string& rule, const policy::Charge& who,
             const std::string& name, const std::string& reason, const std::string& where);
  policy::WallTime wall_time() const;
  void maybe_offload(const track::ControlConnection& c, const track::Call& call);
  void unoffload(std::uint64_t call_id);
  Verdict process_gre(std::span<std::uint8_t> packet, const wire::Ipv4Packet& ip, const PacketMeta& meta);
  Verdict process_control(std::span<std::uint8_t> packet, const PacketMeta& meta);
  ConnectionNat& nat_of(const track::ControlConnection& c);
  void log_anomaly(std::string_view name, const std::string& text, double now);

  // TrackerObserver
  void on_anomaly(const track::AnomalyEvent& e) override;
  void on_message_bytes(const track::ControlConnection& c, track::Direction d,
                        std::span<std::uint8_t> message, std::uint32_t sequence) override;
  void on_call_changed(const track::ControlConnection& c, const track::Call& call) override;
  void on_call_closed(const track::ControlConnection& c, const track::Call& call) override;
  void on_connection_closed(const track::ControlConnection& c) override;

  GatewayOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  OutsideResolver* resolver_;
  track::Tracker tracker_;
  nat::CallIdTranslator translator_;
  std::unordered_map<std::uint64_t, ConnectionNat> nat_;  // by connection id
  GatewayCounters counters_;
  const PacketMeta* current_ = nullptr;  // the packet being processed
  bool drop_current_ = false;
  std::optional<PendingAllocation> pending_allocation_;
  std::vector<ReleasedPacket> released_;
  struct LogBucket {
    double window_start = 0;
    std::size_t lines = 0;
    std::uint64_t suppressed = 0;
  };
  std::array<LogBucket, track::kAnomalyCount + 1> log_buckets_{};
  static constexpr std::uint8_t kLoggedEstablished = 1, kLoggedUser = 2, kLoggedVerdict = 4;
  std::unordered_map<std::uint64_t, std::uint8_t> call_log_state_;  // by call id
  std::shared_ptr<const policy::Policy> policy_;
  policy::Admission admission_;
  std::unordered_map<std::uint64_t, CallPolicy> call_policy_;  // by call id
  std::map<std::pair<wire::Endpoint, wire::Endpoint>, double> denied_logged_;  // (pns, pac) -> when
  struct Offload {
    OffloadedCall call;
    wire::Endpoint pns, pac;
    std::uint16_t pns_call_id = 0;
    std::uint64_t to_client_seen = 0, to_server_seen = 0;  // the kernel's counters, last read
  };
  std::unordered_map<std::uint64_t, Offload> offloaded_;  // by call id
  struct Adopted {
    OffloadedCall call;
    std::uint64_t connection_id = 0;  // kAdoptedConnectionBase + n
    double last_activity = 0;
    std::uint64_t to_client_seen = 0, to_server_seen = 0;
  };
  std::vector<Adopted> adopted_;
  std::uint64_t adopted_total_ = 0;
  void expire_adopted(double now);
  std::vector<OffloadChange> offload_changes_;
};

}  // namespace pptp::daemon
