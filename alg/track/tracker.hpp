// Control connection and call tracking (RFC 2637 sections 2 and 3): which control
// connections exist, which calls each carries, their Call IDs on both sides, and which GRE
// flow belongs to which call in either direction. It is fed decoded packets with their time
// and tells an observer what it saw; it does no I/O and keeps no clock of its own.
//
// Roles: the TCP side that connects to port 1723 is the PNS and the listener the PAC, as in
// pptp-linux, Poptop and the kernel helper. Outgoing calls (placed by the PNS) and incoming
// calls (placed by the PAC) are both followed.
#pragma once

#include <concepts>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "alg/core/flat_index.hpp"
#include "alg/stream/reassembler.hpp"
#include "alg/stream/tcp_window.hpp"
#include "alg/track/anomaly.hpp"
#include "alg/track/auth_follower.hpp"
#include "alg/track/call_list.hpp"
#include "alg/track/direction.hpp"
#include "alg/track/tracker_outcome.hpp"
#include "alg/wire/control_message.hpp"
#include "alg/wire/gre.hpp"
#include "alg/wire/ip.hpp"
#include "alg/wire/ppp.hpp"

namespace pptp::track {

inline constexpr std::size_t kMaxControlConnections = 65536;
// Closed connections kept for their late segments (until a new SYN on their ports or the
// idle timeout): at most this many, the oldest forgotten first. Without the bound a host
// cycling SYN and RST over many ports would fill the table with the dead (issue 13).
inline constexpr std::size_t kMaxClosedConnections = 4096;
inline constexpr std::size_t kMaxCallsPerConnection = 1024;
// The tracker follows the PPP authentication in every GRE frame it sees (re-authentication
// may come at any time). This bound is only the gateway's: how long a call without a user
// stays off the fast path.
inline constexpr std::size_t kAuthScanPackets = 64;
inline constexpr double kConnectionIdleTimeout = 300.0;  // seconds; RFC 2637 Echo runs every 60 s
inline constexpr double kCallSetupTimeout = 60.0;        // a call stuck before Established
inline constexpr double kHalfOpenTimeout = 60.0;         // a connection that never sent a message
inline constexpr double kCallIdleTimeout = 300.0;        // an established call with no GRE

// Operators may shorten these (the daemon's --idle-timeout); tests do.
struct Timeouts {
  double connection_idle = kConnectionIdleTimeout;
  double call_setup = kCallSetupTimeout;
  double call_idle = kCallIdleTimeout;
};

enum class ConnectionState : std::uint8_t {
  TcpOpening,      // TCP seen, no Start-Control-Connection-Request yet
  WaitStartReply,  // Start-Control-Connection-Request sent
  Established,     // Start-Control-Connection-Reply with result 1
  Stopping,        // Stop-Control-Connection-Request sent
  Closed,
};
std::string_view name_of(ConnectionState s);

enum class CallOrigin : std::uint8_t { Outgoing, Incoming };  // placed by the PNS / by the PAC
std::string_view name_of(CallOrigin o);

enum class CallState : std::uint8_t {
  WaitReply,    // Outgoing-Call-Request or Incoming-Call-Request sent
  WaitConnect,  // Incoming-Call-Reply accepted, Incoming-Call-Connected awaited
  Established,
  Clearing,     // Call-Clear-Request sent, Call-Disconnect-Notify awaited
  Closed,
};
std::string_view name_of(CallState s);

struct GreFlowStats {
  std::uint64_t packets = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t ack_only = 0;
  std::uint64_t sequence_backwards = 0;  // reordering or replay seen in the sequence numbers
  std::optional<std::uint32_t> highest_sequence;
};

struct Call {
  std::uint64_t id = 0;  // unique within the tracker
  CallOrigin origin = CallOrigin::Outgoing;
  CallState state = CallState::WaitReply;
  // Ended before the PAC answered its clear (its Call ID reused while clearing): the PAC
  // may still send its GRE for a moment.
  bool pac_may_still_send = false;
  // Ended while its control connection lives with the PAC's call maybe still up, its GRE
  // able to come at any time: by its idle timeout (no Call-Disconnect-Notify came), or by
  // the gateway because the server gave it another call's Call ID (the server never hears).
  bool pac_call_may_live = false;
  std::optional<std::uint16_t> pns_call_id;
  std::optional<std::uint16_t> pac_call_id;
  std::uint16_t call_serial_number = 0;
  // Outgoing-Call-Requests its connection carried before this call (at most 65535): a server
  // that numbers a connection's calls from a range (Poptop) gave it the range's first Call ID
  // plus this (gateway::holder_ran_past_its_range).
  std::uint16_t ordinal = 0;
  std::optional<std::uint8_t> reply_result_code;  // Outgoing-/Incoming-Call-Reply
  std::optional<std::uint8_t> disconnect_result_code;
  std::uint64_t wan_errors_reported = 0;
  std::uint64_t set_link_info_count = 0;
  // PPP authentication, followed by `auth` (auth_follower.hpp) in every GRE frame the tracker
  // sees. `user` is the name whose request the PAC's Ack/Success answered, with its method
  // and Identifier; a later successful exchange with another name replaces it (the observer
  // hears on_call_changed). `first_claim` is the first name anyone sent: a claim only.
  std::optional<AuthName> user;
  std::optional<AuthName> first_claim;
  std::optional<AuthName> rejected;     // the latest name the PAC refused
  std::optional<bool> auth_succeeded;   // the verdict of the latest complete exchange
  std::uint32_t authentications = 0;    // successful exchanges, re-authentication included
  CallAuth auth;                        // made at the first PPP frame, gone while offloaded
  std::array<GreFlowStats, 2> gre;      // by Direction
  double opened_at = 0;
  double established_at = 0;
  double closed_at = 0;
  double last_activity = 0;
  std::string close_reason;
};

struct ControlConnection {
  std::uint64_t id = 0;
  wire::Endpoint pns;
  wire::Endpoint pac;
  wire::Ipv4Address opener;  // who sent its first segment: the PNS, or the PAC if it connected from 1723
  ConnectionState state = ConnectionState::TcpOpening;
  std::array<stream::Reassembler, 2> streams;  // by Direction
  stream::TcpWindow tcp;                       // sequence windows: which RST, FIN, SYN act
  std::array<std::uint64_t, 2> messages{};     // by Direction
  std::array<bool, 2> fin{};
  std::array<std::optional<std::uint32_t>, 2> echo_outstanding{};  // Identifier, by sender
  std::optional<Direction> start_requester;
  std::optional<Direction> stop_requester;
  std::optional<std::uint8_t> start_result_code;
  // Picked up mid-stream with calls taken over from the HA peer (resume_positions).
  bool taken_over = false;
  // Inline: the gateway refused a call set-up of the PNS (on_request_refused, or on_pns_call_id
  // refused). The server never gets it nor anything after it, so nothing more of the PNS's
  // is read: no call opens and no Call ID is reserved for requests that never leave.
  bool pns_refused = false;
  std::uint32_t outgoing_requests = 0;  // Outgoing-Call-Requests read (Call::ordinal)
  std::string pns_host_name, pac_host_name, pns_vendor, pac_vendor;
  CallList calls;  // live calls, found by Call ID (call_list.hpp)
  double opened_at = 0;
  double last_activity = 0;
  double closed_at = 0;
  std::string close_reason;

  // Opened (a SYN) and nothing said yet: no message either way, no call.
  bool half_open() const {
    return state == ConnectionState::TcpOpening && messages[0] + messages[1] == 0 && calls.empty();
  }
  Call* find_by_pns_call_id(std::uint16_t id, CallOrigin origin) const { return calls.find_by_pns_call_id(id, origin); }
  Call* find_by_pns_call_id(std::uint16_t id) const { return calls.find_by_pns_call_id(id); }
  Call* find_by_pac_call_id(std::uint16_t id) const { return calls.find_by_pac_call_id(id); }
};

struct AnomalyEvent {
  Anomaly anomaly;
  const ControlConnection* connection = nullptr;  // null for GRE that matches no connection
  std::optional<Direction> direction;
  std::string detail;
};

// Where each direction (by Direction) of a taken-over control connection resumes: the
// replicated next sequence number at a message boundary, or none known.
using ResumePositions = std::array<std::optional<std::uint32_t>, 2>;

// What the observer answers when the PNS names its Call ID for a call.
enum class CallIdVerdict : std::uint8_t { Accept, Refuse };

class TrackerObserver {
 public:
  virtual ~TrackerObserver() = default;
  virtual void on_anomaly(const AnomalyEvent&) {}
  // Whether on_anomaly will use the next `a`'s detail text (an observer that logs under a
  // limiter says no while the limiter would hold the line back); the text is not made then.
  virtual bool wants_anomaly_detail(Anomaly /*a*/) const { return true; }
  // A whole message before the tracker reads it, with the TCP sequence number of its first
  // byte. The NAT layer rewrites Call IDs here (same length) so that the tracker sees the
  // inside view; nothing else should change the bytes.
  virtual void on_message_bytes(const ControlConnection&, Direction, std::span<std::uint8_t> /*message*/,
                                std::uint32_t /*sequence*/) {}
  virtual void on_message(const ControlConnection&, Direction, const wire::ControlMessage&) {}
  // The PNS has named its Call ID for `call`: an Outgoing-Call-Request opened it (RFC 2637
  // 2.7) or an Incoming-Call-Reply answered it (2.10), in the message whose first byte has
  // TCP sequence number `message_sequence`. Refuse (no Call ID left toward the server, the
  // policy denies it): the tracker ends the call at once and the segment's outcome says to
  // drop it, as the kernel helper's hooks return NF_DROP.
  virtual CallIdVerdict on_pns_call_id(const ControlConnection&, const Call&, std::uint32_t /*message_sequence*/) {
    return CallIdVerdict::Accept;
  }
  // The PAC places a call (Incoming-Call-Request): whether the client's budgets leave room
  // for it. No: the tracker opens no call (IncomingCallRefused), and the PNS's answer to it
  // is refused.
  virtual bool may_place_incoming_call(const ControlConnection&) { return true; }
  // The PAC names its Call ID `id` for `call` (Outgoing-Call-Reply 2.8, Incoming-Call-Request
  // 2.9): whether the call may have it. No: another client's call has it at that server
  // through the same public address, and the tracker ends `call` (PacCallIdTaken).
  virtual bool may_name_pac_call_id(const ControlConnection&, const Call&, std::uint16_t /*id*/) { return true; }
  // The Outgoing-Call-Reply at `message_sequence` accepted a call ended so (PacCallIdTaken),
  // made whole by a segment whose bytes from `segment_start` on had not been read (those
  // before left in earlier segments): whether the PNS is told the call failed (RFC 2637 2.8,
  // the gateway rewrites its Result Code). No: its Result Code left as the PAC wrote it.
  virtual bool tells_pns_reply_refused(const ControlConnection&, std::uint32_t /*message_sequence*/,
                                       std::uint32_t /*segment_start*/) {
    return false;
  }
  // A connection picked up without its SYN: if it was taken over from another node, where
  // its directions resume (docs/ha.md, "Resuming a control connection"); none: an ordinary
  // pick-up, which starts only on a segment that starts with a message.
  virtual std::optional<ResumePositions> resume_positions(const ControlConnection&) { return std::nullopt; }
  // With resume_positions: the head of a message the other node passed in part (docs/ha.md).
  virtual std::optional<stream::ResumeHead> resume_head(const ControlConnection&, Direction) { return std::nullopt; }
  // A call the PNS is clearing whose Call ID it names again (RFC 2637 2.12-2.13): whether it
  // may end there and the new call open. No: the old call stays and the new request waits
  // (deferred, waits_for_clearing_call), or, where it cannot be deferred, is refused as a
  // duplicate.
  virtual bool may_end_clearing_call(const ControlConnection&, const Call&) { return true; }
  // Whether a call the tracker does not hold (taken over from the HA peer) has this PNS Call
  // ID on the connection: a new call may not take it.
  virtual bool holds_pns_call_id(const ControlConnection&, std::uint16_t /*id*/) const { return false; }
  // The tracker refused the PNS's message at `message_sequence` (a duplicate Call ID): the
  // segment's outcome says to drop it; the observer drops what follows it and gives back what
  // it reserved for the message.
  virtual void on_request_refused(const ControlConnection&, wire::ControlMessageType, std::uint32_t /*message_sequence*/) {}
  virtual void on_call_changed(const ControlConnection&, const Call&) {}
  virtual void on_call_closed(const ControlConnection&, const Call&) {}
  virtual void on_connection_closed(const ControlConnection&) {}
  virtual void on_gre(const ControlConnection*, const Call*, Direction, const wire::Ipv4Packet&,
                      const wire::GreHeader*) {}
};

class Tracker {
 public:
  explicit Tracker(TrackerObserver& observer, Timeouts timeouts = {})
      : observer_(observer), timeouts_(timeouts) {}
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
  ~Tracker();

  // The daemon sits in the path and can drop a segment: then a stream whose out-of-order
  // buffer is full refuses segments (SegmentOutcome::refused) instead of losing sync.
  void set_inline(bool in_path) { inline_ = in_path; }
  // Verify TCP checksums of control segments and ignore those that are wrong. The daemon
  // sees packets from the wire and turns this on; captures may hold checksums that the
  // sender's NIC had yet to compute (offload), so the inspector leaves it off.
  void set_verify_checksums(bool verify) { verify_checksums_ = verify; }
  SegmentOutcome on_tcp_segment(double time, const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp);
  GreOutcome on_gre(double time, const wire::Ipv4Packet& ip);
  // GRE of a call that the kernel forwarded without showing it to us (the fast path): its
  // counts and its activity, so that idle timeouts see a busy call as busy.
  void note_offloaded_gre(const wire::Endpoint& pns, const wire::Endpoint& pac, std::uint16_t pns_call_id,
                          Direction d, std::uint64_t packets, std::uint64_t bytes, double time);
  // The kernel forwards this call's GRE (the fast path): no frame of it comes here, so its
  // authentication state goes (CallAuth); frames seen again later start a new follower.
  void forget_auth_state(const ControlConnection& c, const Call& call);
  // Reports an anomaly found outside the tracker (a packet that did not decode).
  void report(Anomaly anomaly, std::string detail);
  // Ends connections idle past their timeouts, calls stuck in set-up and established calls
  // whose GRE has gone quiet.
  void expire(double now);
  // Ends everything (end of a capture, daemon shutdown).
  void close_all(double now, std::string_view reason);
  // Ends the connection pns-pac and its calls as any end does (the observer hears them), then
  // forgets it at once instead of keeping it for late segments: its next segment picks it up
  // afresh (an HA node letting go of a connection its peer carries now, docs/ha.md). Sends
  // nothing. False when no live connection has those endpoints.
  bool release_connection(double time, const wire::Endpoint& pns, const wire::Endpoint& pac, std::string reason);

  const AnomalyCounters& counters() const { return counters_; }
  std::size_t connection_count() const { return connections_.size(); }
  // Closed connections still kept for their late segments (at most kMaxClosedConnections).
  std::size_t closed_connection_count() const { return closed_count_; }
  // Whether this segment would open a new connection (a SYN, a first segment with data,
  // a SYN on a closed connection's ports): the same test on_tcp_segment makes.
  bool opens_connection(const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp) const;
  // The connection between these endpoints, live or closed; nullptr if none is tracked.
  const ControlConnection* find_connection(const wire::Endpoint& pns, const wire::Endpoint& pac) const {
    const auto it = connections_.find(ConnectionKey{pns, pac});
    return it != connections_.end() ? it->second.get() : nullptr;
  }
  std::size_t call_count() const;
  template <class F>
  void for_each_connection(F&& f) const {
    for (const auto& [key, c] : connections_) f(*c);
  }

 private:
  struct ConnectionKey {
    wire::Endpoint pns, pac;
    auto operator<=>(const ConnectionKey&) const = default;
  };
  // A GRE flow: the sender, the receiver and the receiver's Call ID in the key.
  struct GreKey {
    std::uint32_t source, destination;
    std::uint16_t call_id;
    bool operator==(const GreKey&) const = default;
  };
  // Where a call's GRE in one direction goes. Routes are kept in a pool (gre_routes_) and
  // found through a flat index of their slots, 4 bytes an entry and no node (issue 17).
  struct GreRoute {
    GreKey key;
    Direction direction;
    ControlConnection* connection;
    Call* call;
  };
  using RouteSlot = std::uint32_t;  // pool index + 1; 0 is an empty index slot
  static std::size_t gre_hash(const GreKey& k) {
    return mix_hash(((std::uint64_t{k.source} << 32) | k.destination) ^ (std::uint64_t{k.call_id} * 0x9e3779b97f4a7c15ULL));
  }
  RouteSlot find_gre_route(const GreKey& k) const;
  class StreamSink;

  std::optional<ConnectionKey> key_of(const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp) const;
  using ClosedEntry = std::pair<ConnectionKey, std::uint64_t>;
  bool forget(ClosedEntry entry);  // the oldest closed entry goes; true if it was still closed
  void forget_oldest_closed();
  // Whether a new connection fits (tracker_room.cpp): past kMaxControlConnections, the
  // oldest closed one goes, else the oldest one no server accepted (evict_oldest_unproven).
  bool make_room(double time, Direction dir);
  bool evict_oldest_unproven(double time, Direction dir);
  static void drop_streams(ControlConnection& c);
  ControlConnection* connection_for(double time, Direction dir, const wire::Ipv4Packet& ip,
                                    const wire::TcpSegment& tcp, SegmentOutcome& outcome);
  // Inline: a call set-up of the PNS wholly in the segment's new bytes on a connection that
  // is not established yet but may be (its start requested, or taken over with its window
  // not proven), or reusing the Call ID of a call it is clearing while that call may not end
  // (waits_for_clearing_call): left unread (call_set_up_deferred), read again when TCP sends
  // it again. Otherwise handle_message reads it, and refuses it where it must.
  bool defers_call_set_up(ControlConnection& c, Direction dir, Bytes message, std::uint32_t sequence,
                          std::uint32_t segment_start);
  bool waits_for_clearing_call(ControlConnection& c, Direction dir, std::uint16_t id, std::uint32_t sequence);
  // `segment_start`: the first byte of the segment the stream had not read (StreamSink).
  void handle_message(double time, ControlConnection& c, Direction dir, Bytes bytes,
                      std::uint32_t sequence, std::uint32_t segment_start, SegmentOutcome& outcome);
  // How a whole message arrived: where it starts in the stream, where the segment that made
  // it whole starts (its bytes before that left in earlier segments), whether the observer
  // rewrote its bytes (NAT: the PNS's outside Call ID), and the segment's outcome to mark.
  struct MessageArrival {
    std::uint32_t sequence;
    std::uint32_t segment_start;
    bool renamed;
    SegmentOutcome& outcome;
  };
  void handle_call_message(double time, ControlConnection& c, Direction dir, const wire::ControlMessage& m,
                           MessageArrival& arrival);
  void establish_if_taken_over(ControlConnection& c, Direction dir);
  // A PNS's Call ID already live on `c`: refused (the outcome says drop); false if it is free
  // (a call the PNS is clearing under that ID ends first).
  bool refuse_duplicate_pns_call_id(double time, ControlConnection& c, Direction dir,
                                    const wire::ControlMessage& m, std::uint16_t id, MessageArrival& arrival);
  // Asks the observer about the PNS's Call ID; on Refuse ends the call and marks the outcome.
  bool admit_pns_call_id(double time, ControlConnection& c, Call& call, std::uint32_t sequence,
                         SegmentOutcome& outcome);
  // A call set-up of the PNS that must not reach the server: the observer refuses it (the
  // gateway drops it and what follows), and inline nothing more of the PNS's is read.
  void refuse_request(ControlConnection& c, wire::ControlMessageType type, std::uint32_t sequence,
                      SegmentOutcome& outcome);
  Call* open_call(double time, ControlConnection& c, CallOrigin origin);
  bool may_place_incoming_call(ControlConnection& c);
  // `reply`: an Outgoing-Call-Reply's arrival, whose refusal the PNS is told of; none for an
  // Incoming-Call-Request.
  bool names_pac_call_id(double time, ControlConnection& c, Direction dir, Call& call, std::uint16_t id,
                         const MessageArrival* reply);
  void set_call_state(double time, ControlConnection& c, Call& call, CallState s);
  void close_call(double time, ControlConnection& c, Call& call, std::string reason);
  void close_connection(double time, ControlConnection& c, std::string reason);
  static std::optional<GreKey> gre_key(const ControlConnection& c, const Call& call, Direction toward);
  void index_gre(ControlConnection& c, Call& call, Direction toward);
  void unindex_gre(const ControlConnection& c, const Call& call);
  std::optional<PppFrameClass> scan_ppp(ControlConnection& c, Call& call, Direction dir, Bytes payload);
  void apply_auth_event(ControlConnection& c, Call& call, Direction dir, AuthEvent event);
  void raise(Anomaly a, const ControlConnection* c, std::optional<Direction> d, std::string detail);
  // The same with the detail made only when the observer will use it (a log line its
  // limiter admits): a flood of one anomaly costs a counter, not a formatted string.
  template <class MakeDetail>
    requires std::invocable<MakeDetail>
  void raise(Anomaly a, const ControlConnection* c, std::optional<Direction> d, MakeDetail&& make_detail) {
    raise(a, c, d, observer_.wants_anomaly_detail(a) ? std::string(make_detail()) : std::string());
  }

  TrackerObserver& observer_;
  Timeouts timeouts_;
  bool inline_ = false;
  bool verify_checksums_ = false;
  std::map<ConnectionKey, std::unique_ptr<ControlConnection>> connections_;
  std::deque<GreRoute> gre_routes_;  // the pool; a freed slot waits in free_gre_routes_
  std::vector<RouteSlot> free_gre_routes_;
  FlatIndex<RouteSlot> gre_index_;  // by GreKey
  // Closed connections by age (key and id; an entry whose connection went otherwise is stale).
  std::deque<ClosedEntry> closed_;
  std::size_t closed_count_ = 0;
  // Connections in the order they were opened (key and id), for eviction when the table is
  // full; an entry whose connection was accepted by its server or went is stale.
  std::deque<ClosedEntry> unproven_;
  AnomalyCounters counters_{};
  std::uint64_t next_connection_id_ = 1;
  std::uint64_t next_call_id_ = 1;
};

}  // namespace pptp::track
