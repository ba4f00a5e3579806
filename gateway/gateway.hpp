// The gateway: what the daemon does with each queued packet, without any I/O. It parses the
// packet once, runs it through the tracker (the inside view of every control connection and
// call), keeps the Call-ID translation table, rewrites control messages and GRE, and returns
// a verdict. The netlink queue (nftables/) hands packets in and verdicts out; tests and the
// fuzzer drive it directly.
//
// Its parts, one job each: the tracker's hooks here (NAT of Call IDs, the end of a call);
// SegmentHold (segments held while a Call ID field in them is undecided); PolicyGate (the policy and its
// audit); Offloader (the fast path's bookkeeping); LogLimiter (warnings at a bounded rate);
// status_view.cpp (the status JSON). Per-connection and per-call state: records.hpp.
//
// Where packets come from (docs/packet-path.md): TCP/1723 in the forward hook, so both
// directions show the inside addresses; GRE from the server to the router's own address in
// prerouting, before routing (untracked: conntrack cannot tell whose it is, so its
// destination and key are translated here); GRE from a client in the forward hook (tracked:
// the masquerade rule translates its source as for any packet).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "alg/track/packet_path.hpp"
#include "gateway/control_api.hpp"
#include "gateway/budgets.hpp"
#include "gateway/counters.hpp"
#include "gateway/log_limiter.hpp"
#include "gateway/offloader.hpp"
#include "gateway/policy_gate.hpp"
#include "gateway/records.hpp"
#include "gateway/status_snapshot.hpp"
#include "gateway/types.hpp"
#include "nat/call_id_translator.hpp"

namespace pptp::gateway {

// Honest estimates of what the daemon keeps (docs/reliability.md, "Budgets"): the structures
// themselves and, for each allocation, a tree or hash node's overhead.
inline constexpr std::size_t kNodeBytes = 64;
// A live control connection: the tracker's entry and the gateway's record.
inline constexpr std::size_t kConnectionBytes =
    sizeof(track::ControlConnection) + sizeof(ConnectionRecord) + 3 * kNodeBytes;
// A call: the tracker's, the gateway's record, its Call-ID mapping and, at a node each, the
// indexes that find it (the translator's, the GRE routes both ways, the fast path's): 16
// nodes brings it to the ~2 KiB per call the benchmark measured (docs/performance.md,
// 153 MiB resident with 65,536 calls).
inline constexpr std::size_t kCallBytes =
    sizeof(track::Call) + sizeof(CallRecord) + sizeof(nat::CallMapping) + 16 * kNodeBytes;
// A closed connection kept for its late segments (tracker), and a record kept for its patches.
inline constexpr std::size_t kClosedConnectionBytes = sizeof(track::ControlConnection) + 2 * kNodeBytes;
inline constexpr std::size_t kLingeringRecordBytes = sizeof(ConnectionRecord) + kNodeBytes;
// Conntrack entries to put back in ESTABLISHED between two takes (the daemon takes them after
// each packet): a flood of such RSTs costs at most this many ctnetlink requests per packet.
inline constexpr std::size_t kMaxConntrackKeeps = 16;
// Stale client GRE entries to delete between two takes (one per server Call ID named; a
// segment holds at most 45 Outgoing-Call-Replies): the rest counted and left.
inline constexpr std::size_t kMaxStaleGreForgets = 64;
// Closed connections whose records stay for their Call-ID patches (late retransmissions).
inline constexpr std::size_t kMaxLingeringRecords = 4096;

// A call taken over from the HA peer at a promotion or a healing (docs/ha.md), by its Call
// IDs: its control connection was picked up mid-stream, so the tracker holds none of them.
struct TakenOverIds {
  std::uint16_t pns_call_id = 0;      // the client's own (RFC 2637 2.7, 2.10)
  std::uint16_t pac_call_id = 0;      // the server's (2.8, 2.9)
  std::uint16_t outside_call_id = 0;  // the client's as the server knows it (translated or not)
};
// Which of a call's Call IDs names it.
enum class CallIdSide : std::uint8_t { Pns, Pac, Outside };
// A taken-over call an operator killed: its control connection's ends, its elements.
struct TakenOverKill {
  wire::Endpoint pns;
  wire::Endpoint pac;
  OffloadedCall call;
};

// Hears each call's lifecycle (high availability's sync sender, docs/ha.md): called after
// the gateway's own work on the call, with what it holds; nothing is decided here.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // The call changed: set up, established, its user or verdict. `m`: its Call-ID mapping.
  virtual void call_changed(const track::ControlConnection& c, const track::Call& call, const CallRecord& r,
                            const nat::CallMapping* m) = 0;
  virtual void call_ended(const track::ControlConnection& c, const track::Call& call) = 0;
  // A call taken over from the HA peer on `c` (no mapping here), found by one of its Call
  // IDs: the gateway translates its Call-ID fields and reads what ends it by its IDs
  // (call_id_fields.cpp, taken_over.cpp).
  virtual std::optional<TakenOverIds> taken_over_call(const track::ControlConnection& /*c*/, CallIdSide /*by*/,
                                                      std::uint16_t /*id*/) const {
    return std::nullopt;
  }
  // Where `c`'s directions resume if it carries calls taken over (Tracker's resume_positions).
  virtual std::optional<track::ResumePositions> resume_positions(const track::ControlConnection& /*c*/) const {
    return std::nullopt;
  }
  // With resume_positions: the head of a message the HA peer passed in part in direction
  // `d` before the failover, to read that message whole (Tracker's resume_head).
  virtual std::optional<stream::ResumeHead> resume_head(const track::ControlConnection& /*c*/,
                                                        track::Direction /*d*/) const {
    return std::nullopt;
  }
  // A segment of `c` left in direction `d` ending inside a message's first bytes, before its
  // Call ID field is whole: `head` (1 to stream::kMaxResumeHeadBytes, as its sender wrote
  // them) starts at `sequence`. The HA peer gets it (docs/ha.md, "A message split before
  // its Call ID field").
  virtual void message_head_passed(const track::ControlConnection& /*c*/, track::Direction /*d*/,
                                   std::uint32_t /*sequence*/, Bytes /*head*/) {}
  // Whether `c` carries calls taken over (the gateway counts the ends it ignores on it).
  virtual bool holds_taken_over(const track::ControlConnection& /*c*/) const { return false; }
  // Taken-over calls that `e` on `c` ends, out of the observer's table: the gateway ends
  // their adopted entries (elements removed, outside Call ID freed).
  virtual std::vector<OffloadedCall> end_taken_over(const track::ControlConnection& /*c*/,
                                                    const TakenOverEnd& /*e*/) {
    return {};
  }
  // Taken-over calls an operator's `ctl kill` selects by user or client (they have no
  // tracker id), out of the observer's table: the gateway ends their adopted entries and
  // cuts their control connections.
  virtual std::vector<TakenOverKill> kill_taken_over(const KillRequest& /*which*/) { return {}; }
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
  // Conntrack entries to put back in ESTABLISHED (after process(); at most
  // kMaxConntrackKeeps between two takes, the rest counted and left).
  std::vector<ConntrackKeep> take_conntrack_keeps() {
    std::vector<ConntrackKeep> out;
    out.swap(conntrack_keeps_);
    return out;
  }

  // Conntrack entries of client GRE that a call just given its server Call ID would clash
  // with (types.hpp StaleGre), to delete before the packet's verdict goes: the call's own
  // client GRE comes only after it.
  std::vector<StaleGre> take_stale_gre() {
    std::vector<StaleGre> out;
    out.swap(stale_gre_);
    return out;
  }

  // Installs a policy (at start and on reload); nullptr: no policy, everything passes as
  // before. On reload, live calls keep their verdicts unless the policy says on_reload:
  // rejudge, in which case each is judged again and those now denied lose their GRE.
  void set_policy(std::shared_ptr<const policy::Policy> p);
  const policy::Policy* policy() const { return gate_.policy(); }

  // Fast path: elements to add and remove since the last call; every offloaded call (to
  // re-arm its elements); and the kernel's counters, which keep offloaded calls alive.
  std::vector<OffloadChange> take_offload_changes() { return offloader_.take_changes(); }
  std::vector<OffloadedCall> offloaded_calls() const { return offloader_.calls(calls_); }
  // Those to or from these addresses (a route change's destinations; offloader.hpp).
  std::vector<OffloadedCall> offloaded_calls_to(const std::set<std::uint32_t>& addresses) const {
    return offloader_.calls_to(calls_, addresses);
  }
  // Offloaded calls whose elements were armed `every` seconds ago or more (offloader.hpp).
  std::vector<OffloadedCall> calls_due_for_rearm(double now, double every) {
    return offloader_.due_for_rearm(now, every);
  }
  void note_offload_counts(const std::vector<OffloadCount>& counts, double now) {
    offloader_.note_counts(counts, now, calls_, tracker_);
  }
  // After a restart: calls whose elements the previous daemon left in the kernel (their
  // bindings in `counts`). Their Call IDs are reserved and their GRE keeps flowing; they
  // stay while the kernel's counters move and end at the call idle timeout. Returns how
  // many were adopted.
  std::size_t adopt_offloaded(const std::vector<OffloadCount>& counts, double now) {
    return offloader_.adopt(counts, now, translator_);
  }
  // High availability: a demotion's taken-over calls (their elements removed by the daemon)
  // leave the adopted ones: no longer re-armed (the standby would put the elements back),
  // their outside Call IDs free, so that a later promotion adopts them again without a
  // conflict (docs/ha.md). Their records stay published (Republished::hand_over). Returns
  // how many were adopted here.
  std::size_t forget_adopted(const std::vector<OffloadedCall>& calls, std::string_view reason) {
    std::size_t n = 0;
    for (const OffloadedCall& c : calls) n += offloader_.forget_adopted(c, reason, translator_) ? 1 : 0;
    return n;
  }
  // The kernel refused the elements: stop offloading (GRE keeps flowing through the queue).
  void disable_fast_path(std::string_view reason) { offloader_.disable(reason, calls_); }

  nlohmann::json status() const;  // status_view.cpp: status_json(status_snapshot())
  // The status as plain values, cheap to copy on the packet loop; status_json() formats it
  // on any thread (the daemon's worker).
  StatusSnapshot status_snapshot() const;
  const GatewayCounters& counters() const { return counters_; }
  const track::Tracker& tracker() const { return tracker_; }
  const nat::CallIdTranslator& translator() const { return translator_; }
  const policy::Admission& admission() const { return gate_.admission(); }
  const Offloader& offloader() const { return offloader_; }
  const Budgets& budgets() const { return budgets_; }
  // What the budgets count: the connections' and calls' shares and the closed entries.
  std::size_t memory_bytes() const { return budgets_.memory_bytes() + lingering_bytes(); }
  const ConnectionRecord* connection_record(std::uint64_t connection_id) const;
  const CallRecord* call_record(std::uint64_t call_id) const;

  // Ends the calls `which` selects, with their control connections (control_api.hpp,
  // control_api.cpp); their fast-path removals come out of take_offload_changes().
  KillResult kill_calls(const KillRequest& which, double now);
  bool killed(std::uint64_t connection_id) const;
  // High availability: the control connection pns-pac, which the HA peer carries now, let go
  // of (docs/ha.md, "Letting go of what the peer carries"): its calls end here as at any end
  // (their Call IDs freed, their elements' removals out of take_offload_changes()) and the
  // tracker forgets it, so that its next segment picks it up afresh. Nothing is sent.
  // Returns how many calls it had; nullopt when no live connection has those endpoints.
  std::optional<std::size_t> release_connection(const wire::Endpoint& pns, const wire::Endpoint& pac, double now);

  // High availability (docs/ha.md): who hears the calls' lifecycle (nullptr: nobody), and
  // the half of the outside Call IDs this node chooses (nat::CallIdTranslator::set_node_half).
  void set_call_observer(CallObserver* o) { call_observer_ = o; }
  void set_node_half(std::optional<std::uint8_t> node) { translator_.set_node_half(node); }

 private:
  // The packet path, top to bottom.
  Verdict process_control(std::span<std::uint8_t> packet, const track::ParsedPacket& parsed, const PacketMeta& meta);
  std::optional<Verdict> admit_opening(const track::ParsedPacket& parsed, std::optional<policy::Charge>& admitted);
  void keep_conntrack(const track::ControlConnection& c);
  std::optional<Verdict> drop_before_reading(const track::ParsedPacket& parsed, track::Direction dir,
                                             bool& closed_before);
  std::optional<BudgetHit> refuse_buffering(const track::ControlConnection& c, const ConnectionRecord* r,
                                            const wire::TcpSegment& tcp, track::Direction dir) const;
  bool lost_sync(const track::ControlConnection& c) const;
  std::optional<Verdict> drop_unread(const track::SegmentOutcome& out, const wire::TcpSegment& tcp,
                                     bool closed_before);
  void keep_charge(const track::SegmentOutcome& out, const std::optional<policy::Charge>& admitted);
  // Budgets: a refusal counted and logged per source; a connection's share brought up to
  // date; a record forgotten with what it held.
  void note_refusal(BudgetHit hit, wire::Ipv4Address source, std::string_view work);
  void settle(ConnectionRecord& r, const track::ControlConnection& c);
  void forget_record(std::uint64_t connection_id);
  std::size_t lingering_bytes() const;
  bool after_refusal(const ConnectionRecord& r, const wire::TcpSegment& tcp) const;
  Verdict hold_or_patch(std::span<std::uint8_t> packet, const track::ParsedPacket& parsed,
                        const track::ControlConnection& c, ConnectionRecord& r, track::Direction dir,
                        const PacketMeta& meta);
  Verdict process_gre(std::span<std::uint8_t> packet, wire::Ipv4Packet ip, const PacketMeta& meta);
  struct GreTowardClient {
    bool modified = false;   // its destination or Key rewritten for a mapped call
    bool key_taken = false;  // the table holds its Key toward its server (mapped, reserved or held)
  };
  GreTowardClient rewrite_toward_client(std::span<std::uint8_t> packet, wire::Ipv4Packet& ip);
  Verdict judge_gre(const track::GreOutcome& out, GreTowardClient toward);

  ConnectionRecord& record_of(const track::ControlConnection& c);
  void refuse(ConnectionRecord& r, std::uint32_t field_sequence);
  // Call ID fields as soon as they are whole (call_id_fields.cpp).
  PartialField decide_partial_field(const track::ControlConnection& c, ConnectionRecord& r, track::Direction dir);
  void reserve_call_id(const track::ControlConnection& c, ConnectionRecord& r, std::uint32_t field_sequence,
                       std::optional<std::uint16_t> inside_call_id);
  std::optional<std::uint16_t> translated_value(const track::ControlConnection& c, nat::CallIdField field,
                                                std::uint16_t id) const;
  // The outside Call ID's first byte for a client's Call ID that starts with `inside_high`,
  // when the connection's calls agree on it (call_id_fields.cpp).
  std::optional<std::uint8_t> outside_high_byte(const track::ControlConnection& c, std::uint8_t inside_high) const;
  // A whole field's patch; after a decision from its first byte, only its second byte's.
  void decide_whole_field(const track::ControlConnection& c, ConnectionRecord& r, nat::CallIdField field,
                          track::Direction dir, std::uint32_t sequence, std::uint16_t id);
  // A segment `at` that left ending inside a message's head: the HA peer gets the head
  // (CallObserver::message_head_passed; call_id_fields.cpp).
  void pass_message_head(const track::ControlConnection& c, ConnectionRecord& r, track::Direction dir,
                         const nat::TcpPayload& at);
  // A call on `c` by the client's inside Call ID (Pns) or its outside one (Outside), as that
  // pair: the gateway's own mapping, else a call taken over from the HA peer.
  struct CallIdPair {
    std::uint16_t inside = 0, outside = 0;
  };
  std::optional<CallIdPair> call_id_pair(const track::ControlConnection& c, CallIdSide by, std::uint16_t id) const;
  // Whether a Call-Disconnect-Notify's Call ID is the PAC's reading (RFC 2637 2.13), not the
  // PNS's outside one that Windows servers put there: a call on `c`, the tracker's or one
  // taken over, carries it as its PAC's Call ID.
  bool names_pac_call(const track::ControlConnection& c, std::uint16_t id) const;
  bool desynced(const track::ControlConnection& c, ConnectionRecord& r);
  void resolve_outside(const track::ControlConnection& c, ConnectionRecord& r);
  bool map_call_id(const track::ControlConnection& c, const track::Call& call, ConnectionRecord& r,
                   std::uint32_t field_sequence);
  void maybe_offload(const track::ControlConnection& c, const track::Call& call, CallRecord& r);
  void log_call_events(const track::ControlConnection& c, const track::Call& call, CallRecord& r);
  void patch_call_id_field(const track::ControlConnection& c, track::Direction d, wire::ControlMessageType type,
                           std::span<std::uint8_t> message, std::uint32_t sequence);
  // HA (taken_over.cpp): what a message ends of the calls taken over, read as its sender
  // wrote it (before its Call ID field is translated); the end itself comes after that, and
  // after the connection's end.
  std::optional<TakenOverEnd> taken_over_end_named(const track::ControlConnection& c, track::Direction d,
                                                   wire::ControlMessageType type,
                                                   std::span<const std::uint8_t> message) const;
  void end_taken_over(const track::ControlConnection& c, const TakenOverEnd& e, std::string_view reason);
  // A message's end of taken-over calls: now if the window is proven, else held in the
  // connection's record until the message's receiver acknowledges it (settle_unproven_ends).
  void end_or_hold_taken_over(const track::ControlConnection& c, track::Direction d, const TakenOverEnd& e,
                              std::string_view reason, std::uint32_t through);
  void settle_unproven_ends(const track::ControlConnection& c, ConnectionRecord& r);
  void end_taken_over(const track::ControlConnection& c);
  // `ctl kill` (control_api.cpp): a connection cut with all its calls; the calls no tracker
  // holds (taken over at an HA promotion, adopted at a restart) that `which` selects.
  // line_per_call: a call_killed line for each call (the operator's kill); a cut writes one line.
  void kill_connection(const track::ControlConnection& c, KillResult& result, bool line_per_call = true);
  void cut_for_server_call_id(const track::ControlConnection& c, std::uint16_t id);
  void kill_taken_over(const KillRequest& which, KillResult& result);
  void kill_adopted(const KillRequest& which, KillResult& result);
  bool taken_over_end_proven(const track::ControlConnection& c);
  // The one place a call's gateway state ends: its Call ID, its elements, its limits.
  void end_call(const track::ControlConnection& c, const track::Call& call);

  // TrackerObserver: the tracker's hooks.
  void on_anomaly(const track::AnomalyEvent& e) override;
  bool wants_anomaly_detail(track::Anomaly a) const override {
    return warnings_.would_admit(track::name_of(a), packet_.time);
  }
  void on_message_bytes(const track::ControlConnection& c, track::Direction d, std::span<std::uint8_t> message,
                        std::uint32_t sequence) override;
  track::CallIdVerdict on_pns_call_id(const track::ControlConnection& c, const track::Call& call,
                                      std::uint32_t message_sequence) override;
  bool may_end_clearing_call(const track::ControlConnection& c, const track::Call& call) override;
  bool may_place_incoming_call(const track::ControlConnection& c) override;
  bool may_name_pac_call_id(const track::ControlConnection& c, const track::Call& call, std::uint16_t id) override;
  bool tells_pns_reply_refused(const track::ControlConnection& c, std::uint32_t message_sequence,
                               std::uint32_t segment_start) override;
  void release_pac_call_id(const track::ControlConnection& c, const track::Call& call, const PacCallKey& key);
  bool hand_over_pac_call_id(const track::ControlConnection& c, ConnectionRecord& r, const track::Call& call,
                             const PacCallKey& key);
  bool holds_pns_call_id(const track::ControlConnection& c, std::uint16_t id) const override {
    return call_observer_ != nullptr && call_observer_->taken_over_call(c, CallIdSide::Pns, id).has_value();
  }
  void on_request_refused(const track::ControlConnection& c, wire::ControlMessageType type,
                          std::uint32_t message_sequence) override;
  void on_call_changed(const track::ControlConnection& c, const track::Call& call) override;
  std::optional<track::ResumePositions> resume_positions(const track::ControlConnection& c) override {
    return call_observer_ != nullptr ? call_observer_->resume_positions(c) : std::nullopt;
  }
  std::optional<stream::ResumeHead> resume_head(const track::ControlConnection& c, track::Direction d) override {
    return call_observer_ != nullptr ? call_observer_->resume_head(c, d) : std::nullopt;
  }
  void on_call_closed(const track::ControlConnection& c, const track::Call& call) override;
  void on_connection_closed(const track::ControlConnection& c) override;

  GatewayOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  OutsideResolver* resolver_;
  GatewayCounters counters_;
  LogLimiter warnings_;
  PolicyGate gate_;
  PacCallIds<> pac_call_ids_;  // held by tracked calls and the offloader's adopted ones
  Offloader offloader_;
  track::Tracker tracker_;
  nat::CallIdTranslator translator_;
  std::unordered_map<std::uint64_t, ConnectionRecord> connections_;  // by the tracker's connection id
  CallTable calls_;
  Budgets budgets_;
  std::deque<std::uint64_t> lingering_;  // closed connections whose records stay, oldest first
  std::vector<ReleasedPacket> released_;
  std::vector<ConntrackKeep> conntrack_keeps_;
  std::vector<StaleGre> stale_gre_;
  HoldBudget held_overall_;  // what every connection's SegmentHold holds together
  // What the hooks read of the packet (or tick) being handled: its time and the public
  // address conntrack gave its connection. Input only: decisions come back as return values.
  struct PacketContext {
    double time = 0;
    std::optional<wire::Ipv4Address> outside;
  } packet_;
  CallObserver* call_observer_ = nullptr;
};

}  // namespace pptp::gateway
