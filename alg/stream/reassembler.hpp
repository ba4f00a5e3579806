// Rebuilds PPTP control messages from the TCP segments of one direction of a control
// connection: messages split at any byte or coalesced, retransmitted and overlapping
// segments, and out-of-order segments within a bounded window. Memory per direction is
// bounded; a gap that cannot be filled within the bounds, or bytes that do not frame as a
// PPTP message, put the direction into LostSync: it is reported, never guessed at.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/wire/control_message.hpp"

namespace pptp::stream {

inline constexpr std::size_t kMaxPendingSegments = 32;        // out-of-order segments kept
inline constexpr std::size_t kMaxPendingBytes = 32 * 1024;    // and their bytes
inline constexpr std::uint32_t kReorderWindow = 64 * 1024;    // how far ahead a segment may start
// A taken-over direction (resume()) that finds no message start may skip this many segments
// or bytes looking for one before it loses sync (docs/ha.md, "Resuming a control connection").
inline constexpr std::uint32_t kMaxResyncSegments = 8;
inline constexpr std::uint32_t kMaxResyncBytes = 8 * 1024;
// The longest message head a node replicates (docs/ha.md, "A message split before its Call
// ID field"): the Call ID fields translated are at bytes 12-13, or 14-15 for an
// Outgoing-Call-Reply's Peer's Call ID (RFC 2637 2.x), so a head of 15 bytes or fewer may
// not have its field whole.
inline constexpr std::size_t kMaxResumeHeadBytes = 15;
// Bytes read in order and kept until their receiver acknowledges them (keep_read): past
// this an in-order segment is refused (inline) until the receiver catches up. A PPTP
// control message is at most 220 bytes; a sender with more than this unacknowledged is
// flooding or its receiver is gone.
inline constexpr std::size_t kMaxUnacknowledgedBytes = 16 * 1024;

enum class StreamState : std::uint8_t {
  AwaitingStart,  // no SYN seen and no data yet
  Synced,
  LostSync,       // terminal: nothing more is delivered from this direction
};
std::string_view name_of(StreamState s);

enum class StreamAnomaly : std::uint8_t {
  Retransmission,   // a segment wholly before the next expected byte
  Overlap,          // a segment partly before it (its old bytes are dropped)
  OutOfOrder,       // a segment ahead of a gap, kept until the gap fills
  MidStreamStart,   // no SYN seen: the first segment was taken as a message start
  WindowExceeded,   // the gap could not be filled within the bounds: lost sync
  FramingError,     // bytes that are no PPTP message: lost sync
  ResumedAtPosition,  // taken over: started at the replicated boundary, bytes before it skipped
  ResyncSkipped,      // taken over: bytes with no message start skipped (they pass unparsed)
  ResumedAtHead,      // taken over: started with the replicated head of a message cut there
};
inline constexpr std::size_t kStreamAnomalyCount = 9;

// The first bytes of a message that the node carrying the connection passed before a
// failover, the rest not yet: the taken-over direction starts with them when its first
// segment is their continuation, so that the message is read whole (its Call ID field in
// the rest is translated as the old node would have).
struct ResumeHead {
  std::uint32_t sequence = 0;         // of the head's first byte: a message start
  std::vector<std::uint8_t> bytes;    // 1 to kMaxResumeHeadBytes
  bool operator==(const ResumeHead&) const = default;
};
std::string_view name_of(StreamAnomaly a);

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // A whole control message, framed (header valid, length as the type requires);
  // `sequence` is the TCP sequence number of its first byte. False leaves it unread: the
  // stream stops before it (what was buffered past it goes) and feed refuses the segment,
  // so the message is read again when the sender sends it again.
  virtual bool on_message(Bytes message, std::uint32_t sequence) = 0;
  // `error` is set for FramingError.
  virtual void on_stream_anomaly(StreamAnomaly anomaly, const wire::ParseError* error) = 0;
};

class Reassembler {
 public:
  // The SYN's sequence number: data starts one after it.
  void on_syn(std::uint32_t initial_sequence);
  // Inline (the daemon, which can drop a segment and have TCP send it again): a segment
  // ahead of a gap that does not fit the bounds is refused (feed returns false) instead of
  // losing sync; the caller drops it. Offline (inspect) the direction loses sync.
  void refuse_when_full(bool refuse) { refuse_when_full_ = refuse; }
  // Inline: the bytes read in order are kept until the receiver acknowledges them, so that a
  // retransmission of bytes the gateway dropped after they were read (ahead of a gap, with a
  // refused request, at a bound) can be checked against what was read: the receiver must
  // never take other bytes than those the Call IDs were decided from (docs/packet-path.md,
  // "What was read is what leaves").
  void keep_read(bool keep) { keep_read_ = keep; }
  // The receiver acknowledged everything before `ack`: what is kept of it goes.
  void acknowledged(std::uint32_t ack);
  // The bytes of a segment at `sequence` that were read and are still kept are the same.
  bool agrees_with_read(std::uint32_t sequence, Bytes payload) const;
  std::size_t unacknowledged_bytes() const { return buffers_ ? buffers_->read.size() : 0; }
  // A direction taken over from another node (docs/ha.md) and not yet started: it starts at
  // `boundary` (the replica's next expected sequence number at a message boundary) when a
  // segment covers it, else on a valid header at or inside a segment, skipping what comes
  // before within kMaxResyncSegments / kMaxResyncBytes; past them it loses sync as before.
  // With `head`: a first segment that starts where the head ends, and frames with it, starts
  // the stream at the head's first byte, the head's bytes already read; a head before
  // `boundary` is older than it and not used.
  void resume(std::optional<std::uint32_t> boundary, std::optional<ResumeHead> head = std::nullopt);
  // False: refused; nothing of it was taken, or the sink left a message unread (the stream
  // ends before that message).
  bool feed(std::uint32_t sequence, Bytes payload, MessageSink& sink);

  StreamState state() const { return state_; }
  // Bytes held: a partial message, out-of-order segments and what was read and is not yet
  // acknowledged (keep_read).
  std::size_t buffered_bytes() const {
    return buffers_ ? buffers_->partial.size() + buffers_->pending_bytes + buffers_->read.size() : 0;
  }
  // Heap the buffers take (capacity, not just the bytes held): none at a message boundary
  // with no gap, as most of the time on most connections (issue 17, memory per call).
  std::size_t allocated_bytes() const;
  bool has_gap() const { return buffers_ && !buffers_->pending.empty(); }
  // The start of the message not yet whole (empty if none), and the sequence number of its
  // first byte; the next byte expected in order follows it. The gateway reads a Call ID
  // field there as soon as it is in (docs/packet-path.md, "Held segments").
  Bytes partial() const { return buffers_ ? Bytes(buffers_->partial) : Bytes(); }
  std::uint32_t partial_sequence() const {
    return next_sequence_ - static_cast<std::uint32_t>(buffers_ ? buffers_->partial.size() : 0);
  }
  // The next byte expected in order (Synced): a segment starting past it would be buffered.
  std::uint32_t next_sequence() const { return next_sequence_; }
  std::uint64_t delivered_bytes() const { return delivered_bytes_; }
  const std::optional<wire::ParseError>& framing_error() const { return framing_error_; }

 private:
  // False: the sink left a message unread (leave_unread_from).
  bool consume(Bytes data, MessageSink& sink);
  void leave_unread_from(std::uint32_t sequence);
  bool drain_pending(MessageSink& sink);
  void lose_sync(StreamAnomaly why, const wire::ParseError* error, MessageSink& sink);
  bool buffer_ahead(std::uint32_t sequence, std::uint32_t offset, Bytes payload, MessageSink& sink);
  void free_buffers_if_empty();
  std::optional<std::uint32_t> find_start(std::uint32_t sequence, Bytes payload, MessageSink& sink);
  bool continues_head(std::uint32_t sequence, Bytes payload) const;
  bool past_resync_limits() const;
  std::optional<std::uint32_t> resync(std::uint32_t sequence, Bytes payload, MessageSink& sink);

  // What is held between segments; allocated only while something is (a message cut
  // between segments, a segment past a gap) and freed as soon as nothing is.
  struct Buffers {
    std::vector<std::uint8_t> partial;  // start of a message not yet complete
    std::map<std::uint32_t, std::vector<std::uint8_t>> pending;  // by sequence number
    std::size_t pending_bytes = 0;
    // keep_read: the bytes read in order, [next_sequence_ - read.size(), next_sequence_).
    std::vector<std::uint8_t> read;
  };

  StreamState state_ = StreamState::AwaitingStart;
  std::uint32_t next_sequence_ = 0;
  std::unique_ptr<Buffers> buffers_;
  std::uint64_t delivered_bytes_ = 0;
  std::optional<wire::ParseError> framing_error_;
  bool refuse_when_full_ = false;
  bool keep_read_ = false;
  // Set by resume() until the direction starts: what it may still skip.
  struct Resume {
    std::optional<std::uint32_t> boundary;
    std::optional<ResumeHead> head;
    std::uint32_t segments_skipped = 0;
    std::uint32_t bytes_skipped = 0;
  };
  std::unique_ptr<Resume> resume_;
};

}  // namespace pptp::stream
