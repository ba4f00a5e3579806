// The sync channel's logic (channel.hpp; docs/ha.md, "Channel").
#include "sync/channel.hpp"

#include <algorithm>

namespace pptp::sync {

ChannelEnd::ChannelEnd(ChannelOptions options, std::uint64_t incarnation)
    : options_(std::move(options)), incarnation_(incarnation) {}

void ChannelEnd::publish(Body b) {
  if (const auto* a = std::get_if<AddCall>(&b)) published_.put(a->call);
  if (const auto* u = std::get_if<UpdateCall>(&b)) published_.put(u->call);
  if (const auto* d = std::get_if<DeleteCall>(&b)) published_.erase(d->key);
  // No peer yet, or a broken stream: the table alone changes; the peer gets a snapshot.
  if (peer_incarnation_ == 0 || stream_broken_) return;
  if (unacked_.size() >= options_.max_unacked) {
    ++counters_.backlog_overflows;
    unacked_.clear();
    unsent_from_ = resend_count_ = 0;
    snapshot_end_ = 0;
    stream_broken_ = true;
    return;
  }
  queue(std::move(b));
}

void ChannelEnd::publish_head(MessageHead h) {
  if (!peer_heard()) return;
  ++counters_.heads_sent;
  unsequenced_.push_back(std::move(h));
}

void ChannelEnd::queue(Body b) { unacked_.push_back(Pending{next_sequence_++, std::move(b)}); }

void ChannelEnd::queue_snapshot() {
  ++counters_.snapshots_sent;
  ++snapshot_id_;
  // The snapshot replaces whatever was in flight: the receiver restarts at its first part.
  unacked_.clear();
  unsent_from_ = resend_count_ = 0;
  stream_broken_ = false;
  const std::size_t room = kMaxDatagram - kSnapshotPartOverhead;
  SnapshotPart part{snapshot_id_, true, false, {}};
  std::size_t used = 0;
  for (const auto& [key, call] : published_.calls()) {
    if (used + record_bytes(call) > room && !part.calls.empty()) {
      queue(part);
      part = SnapshotPart{snapshot_id_, false, false, {}};
      used = 0;
    }
    used += record_bytes(call);
    part.calls.push_back(call);
  }
  part.last = true;
  queue(std::move(part));
  snapshot_end_ = next_sequence_ - 1;
}

bool ChannelEnd::note_peer(const Header& h, double now) {
  if (h.incarnation < peer_incarnation_) return false;
  if (h.incarnation > peer_incarnation_) {
    // The peer (re)started: it knows nothing of our stream, and its table starts anew.
    if (peer_incarnation_ != 0) ++counters_.peer_restarts;
    peer_incarnation_ = h.incarnation;
    replica_.clear();
    synced_ = false;
    expected_ = 0;
    ahead_.clear();
    queue_snapshot();
    peer_epoch_ = 0;  // a new run counts its epoch anew
    peer_hello_ = 0;  // and its Hellos
  }
  heard_ = true;
  last_heard_ = now;
  // A promotion only raises the epoch: a datagram held back from before it does not lower
  // it (nor would the next one then read as a second rise, HealingWatch).
  peer_epoch_ = std::max(peer_epoch_, h.epoch);
  return true;
}

void ChannelEnd::take_ack(std::uint64_t ack) {
  bool advanced = false;
  while (!unacked_.empty() && unacked_.front().sequence <= ack) {
    unacked_.pop_front();
    if (unsent_from_ > 0) --unsent_from_;
    if (resend_count_ > 0) --resend_count_;
    advanced = true;
  }
  if (advanced) front_sent_at_ = now_;
  if (snapshot_end_ != 0 && ack >= snapshot_end_) snapshot_end_ = 0;
}

void ChannelEnd::receive(Bytes datagram, double now) {
  now_ = now;
  auto m = decode(datagram, options_.key);
  if (!m) {
    ++counters_.refused;
    return;
  }
  if (m->header.node == options_.node) {
    ++counters_.own_node;
    return;
  }
  if (!note_peer(m->header, now)) {
    ++counters_.stale;
    return;
  }
  ++counters_.received;
  take_ack(m->header.ack);
  if (stream_broken_) queue_snapshot();
  if (const auto* hello = std::get_if<Hello>(&m->body)) {
    // Numbered in the header's sequence (0 from a build before s23): one no newer than a
    // Hello heard already was held back on the link; its role is stale. Taken, it would
    // end a split brain or make a retake due while the peer is still active.
    if (m->header.sequence != 0 && m->header.sequence <= peer_hello_) {
      ++counters_.stale_hellos;
      return;
    }
    peer_hello_ = m->header.sequence;
    peer_active_ = hello->active;
    ++counters_.hellos;
    if (hello->want_snapshot && snapshot_end_ == 0) queue_snapshot();
  } else if (auto* head = std::get_if<MessageHead>(&m->body)) {
    ++(replica_.put_head(std::move(*head)) ? counters_.heads_kept : counters_.heads_unkept);
  } else if (!std::holds_alternative<Ack>(m->body)) {
    take_sequenced(m->header.sequence, m->body);
  }
}

void ChannelEnd::restart_stream(std::uint64_t first_sequence) {
  replica_.clear();
  synced_ = false;
  expected_ = first_sequence;
  // What came before the snapshot is superseded; its later parts may already be here.
  ahead_.erase(ahead_.begin(), ahead_.lower_bound(first_sequence));
}

void ChannelEnd::take_sequenced(std::uint64_t sequence, Body& body) {
  ack_due_ = true;
  const auto* part = std::get_if<SnapshotPart>(&body);
  // A snapshot's first part starts the stream anew (the sender dropped what came before).
  if (part != nullptr && part->first && (expected_ == 0 || sequence >= expected_)) restart_stream(sequence);
  if (expected_ == 0) {
    ++counters_.before_snapshot;
    return;
  }
  if (sequence < expected_ || ahead_.contains(sequence)) {
    ++counters_.duplicates;
    return;
  }
  if (sequence > expected_) {
    ++counters_.out_of_order;
    if (sequence - expected_ > options_.max_ahead) {
      ++counters_.beyond_window;  // the sender goes back to the gap and comes here again
      return;
    }
    ahead_.emplace(sequence, std::move(body));
    return;
  }
  apply(body);
  ++expected_;
  // The gap is filled: what waited behind it follows in order.
  for (auto it = ahead_.begin(); it != ahead_.end() && it->first == expected_; it = ahead_.erase(it)) {
    apply(it->second);
    ++expected_;
  }
}

void ChannelEnd::apply(Body& body) {
  if (auto* a = std::get_if<AddCall>(&body)) replica_.put(a->call);
  if (auto* u = std::get_if<UpdateCall>(&body)) replica_.put(u->call);
  if (auto* d = std::get_if<DeleteCall>(&body)) replica_.erase(d->key);
  if (auto* s = std::get_if<SnapshotPart>(&body)) {
    for (const CallState& c : s->calls) replica_.put(c);
    if (s->last) {
      synced_ = true;
      ++counters_.snapshots_received;
    }
  }
}

void ChannelEnd::tick(double now) {
  now_ = now;
  if (unsent_from_ > 0 && now - front_sent_at_ >= options_.resend_after) {
    resend_count_ = std::min(options_.resend_burst, unsent_from_);
    front_sent_at_ = now;
  }
  if (now - last_hello_ >= options_.hello_every) {
    unsequenced_.push_back(Hello{!synced_, active_});
    last_hello_ = now;
  }
}

Header ChannelEnd::header(std::uint64_t sequence) const {
  return Header{options_.node, epoch_, incarnation_, sequence, expected_ == 0 ? 0 : expected_ - 1};
}

void ChannelEnd::send(const Header& h, const Body& b, std::vector<std::vector<std::uint8_t>>& out) {
  std::vector<std::uint8_t> bytes;
  if (!encode(Message{h, b}, options_.key, bytes)) {
    ++counters_.unencodable;
    return;
  }
  out.push_back(std::move(bytes));
  ++counters_.sent;
}

std::vector<std::vector<std::uint8_t>> ChannelEnd::take_outgoing() {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::size_t i = 0; i < resend_count_; ++i) send(header(unacked_[i].sequence), unacked_[i].body, out);
  counters_.resent += resend_count_;
  if (unsent_from_ == 0 && unsent_from_ < unacked_.size()) front_sent_at_ = now_;
  for (std::size_t i = unsent_from_; i < unacked_.size(); ++i) send(header(unacked_[i].sequence), unacked_[i].body, out);
  resend_count_ = 0;
  unsent_from_ = unacked_.size();
  for (const Body& b : unsequenced_) send(header(std::holds_alternative<Hello>(b) ? ++hellos_sent_ : 0), b, out);
  unsequenced_.clear();
  if (out.empty() && ack_due_) send(header(0), Ack{}, out);
  ack_due_ = false;
  return out;
}

}  // namespace pptp::sync
