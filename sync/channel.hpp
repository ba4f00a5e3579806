// One end of the sync channel (docs/ha.md, "Channel"): the logic without sockets. Each end
// sends its own calls (publish_*) as a reliable stream of sequenced messages and receives
// the peer's into a Replica. Time is passed in; datagrams go out through take_outgoing()
// and come in through receive() (UdpLink carries them in the daemon, tests pipe them).
//
// Reliability: every Add/Update/Delete/Snapshot part has a sequence number; the peer acks
// the highest it received in order (in every header it sends); what stays unacknowledged
// for resend_after is sent again, oldest first; the receiver keeps up to max_ahead
// messages that came after a gap and applies them once it is filled. A peer that (re)starts (a new incarnation) or asks for it (Hello with
// want_snapshot) gets the whole table as a snapshot; so does one whose unacknowledged
// backlog outgrew max_unacked (a gap that cannot be filled). Until a snapshot from the
// peer's current incarnation is whole, this end is not synced() and must not be promoted.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "sync/message.hpp"
#include "sync/replica.hpp"

namespace pptp::sync {

struct ChannelOptions {
  std::uint8_t node = 0;
  std::vector<std::uint8_t> key;  // the pair's shared key (kMinKeyBytes or more)
  double resend_after = 0.2;      // s without an ack before the oldest message goes again
  double hello_every = 1.0;       // s between Hellos (the peer's liveness and snapshot requests)
  double peer_timeout = 3.5;      // s of silence after which the peer counts as gone
  std::size_t max_unacked = 4096; // messages waiting for an ack; beyond, a snapshot replaces them
  std::size_t resend_burst = 256; // messages sent again per tick at most
  std::size_t max_ahead = 1024;   // messages kept that came after a gap
};

struct ChannelCounters {
  std::uint64_t sent = 0, resent = 0, received = 0;
  std::uint64_t refused = 0;         // did not decode (bad tag, truncated, ...)
  std::uint64_t own_node = 0;        // carried our own node id: both nodes configured alike
  std::uint64_t stale = 0;           // from an older incarnation of the peer
  std::uint64_t duplicates = 0, out_of_order = 0, before_snapshot = 0, beyond_window = 0;
  std::uint64_t snapshots_sent = 0, snapshots_received = 0, backlog_overflows = 0;
  std::uint64_t peer_restarts = 0;
  std::uint64_t hellos = 0;          // Hellos received (the peer's role is as fresh as the last)
  std::uint64_t stale_hellos = 0;    // Hellos older than one heard before: held back, role not taken
  std::uint64_t unencodable = 0;     // a record the codec refused (a name beyond its bound)
  std::uint64_t heads_sent = 0;      // message heads published (unsequenced, best effort)
  std::uint64_t heads_kept = 0;      // the peer's heads kept for its connections
  std::uint64_t heads_unkept = 0;    // the peer's heads for no connection of its calls, or older
};

class ChannelEnd {
 public:
  // `incarnation` grows with each start of a node (its start time in ns).
  ChannelEnd(ChannelOptions options, std::uint64_t incarnation);

  // This node's calls, as they change.
  void publish_add(const CallState& c) { publish(AddCall{c}); }
  void publish_update(const CallState& c) { publish(UpdateCall{c}); }
  void publish_delete(const CallKey& k) { publish(DeleteCall{k}); }
  // The head of a message passed in part on a connection of our calls: sent once, with the
  // next datagrams, not acknowledged (a head lost costs only what it would have saved).
  void publish_head(MessageHead h);

  void receive(Bytes datagram, double now);
  // Resends and Hellos that are due.
  void tick(double now);
  // Datagrams to send, encoded with the latest acknowledgement (at the time of the last
  // receive() or tick()).
  std::vector<std::vector<std::uint8_t>> take_outgoing();

  const Replica& replica() const { return replica_; }        // the peer's calls
  const Replica& published() const { return published_; }    // our own
  bool synced() const { return synced_; }
  bool peer_alive(double now) const { return heard_ && now - last_heard_ < options_.peer_timeout; }
  // A peer was heard once (any incarnation): until then publish_head drops heads.
  bool peer_heard() const { return peer_incarnation_ != 0; }
  std::uint32_t epoch() const { return epoch_; }
  void set_epoch(std::uint32_t e) { epoch_ = e; }  // a promotion increments it
  std::uint32_t peer_epoch() const { return peer_epoch_; }
  // Our role, carried in every Hello; the peer's, from its last Hello (standby until one
  // came; an older build's Hellos always read as standby).
  void set_active(bool active) { active_ = active; }
  bool peer_active() const { return peer_active_; }
  std::size_t unacked() const { return unacked_.size(); }
  const ChannelCounters& counters() const { return counters_; }
  std::uint8_t node() const { return options_.node; }

 private:
  struct Pending {
    std::uint64_t sequence = 0;
    Body body;
  };
  void publish(Body b);
  void queue(Body b);
  void queue_snapshot();
  bool note_peer(const Header& h, double now);
  void take_ack(std::uint64_t ack);
  void take_sequenced(std::uint64_t sequence, Body& body);
  void apply(Body& body);
  void restart_stream(std::uint64_t first_sequence);
  void send(const Header& h, const Body& b, std::vector<std::vector<std::uint8_t>>& out);
  Header header(std::uint64_t sequence) const;

  ChannelOptions options_;
  std::uint64_t incarnation_;
  std::uint32_t epoch_ = 0;
  ChannelCounters counters_;
  // Outbound: our calls, the sequenced stream and its unacknowledged tail.
  Replica published_;
  std::uint64_t next_sequence_ = 1;
  std::deque<Pending> unacked_;
  std::size_t unsent_from_ = 0;        // index in unacked_ of the first never sent
  std::size_t resend_count_ = 0;       // how many from the front go again
  double front_sent_at_ = 0;           // when the front was last sent (or last acked past)
  std::uint64_t snapshot_end_ = 0;     // last sequence of the snapshot in flight, 0: none
  std::uint32_t snapshot_id_ = 0;
  bool stream_broken_ = false;         // the backlog overflowed: a snapshot when the peer speaks
  std::vector<Body> unsequenced_;      // Hellos and Acks to send
  bool active_ = false;
  bool peer_active_ = false;
  std::uint64_t hellos_sent_ = 0;  // our Hellos' numbers (the header's sequence), 1 up
  std::uint64_t peer_hello_ = 0;   // the newest Hello number heard in the peer's run
  // Inbound: the peer's stream and its calls.
  Replica replica_;
  std::uint64_t peer_incarnation_ = 0;
  std::uint32_t peer_epoch_ = 0;
  std::uint64_t expected_ = 0;         // next sequence from the peer, 0: waiting for a snapshot
  std::map<std::uint64_t, Body> ahead_;  // came after a gap, by sequence
  bool synced_ = false;
  bool ack_due_ = false;
  bool heard_ = false;
  double last_heard_ = 0;
  double last_hello_ = -1e9;
  double now_ = 0;                     // of the last receive() or tick()
};

}  // namespace pptp::sync
