#include "alg/stream/reassembler.hpp"

#include <algorithm>
#include <array>

namespace pptp::stream {

namespace {
// Sequence-space distance from `from` to `to` (RFC 9293 serial arithmetic).
std::int32_t distance(std::uint32_t from, std::uint32_t to) {
  return static_cast<std::int32_t>(to - from);
}
}  // namespace

std::string_view name_of(StreamState s) {
  switch (s) {
    case StreamState::AwaitingStart: return "awaiting_start";
    case StreamState::Synced: return "synced";
    case StreamState::LostSync: return "lost_sync";
  }
  return "unknown";
}

std::string_view name_of(StreamAnomaly a) {
  switch (a) {
    case StreamAnomaly::Retransmission: return "tcp_retransmission";
    case StreamAnomaly::Overlap: return "tcp_overlap";
    case StreamAnomaly::OutOfOrder: return "tcp_out_of_order";
    case StreamAnomaly::MidStreamStart: return "tcp_mid_stream_start";
    case StreamAnomaly::WindowExceeded: return "stream_window_exceeded";
    case StreamAnomaly::FramingError: return "stream_framing_error";
    case StreamAnomaly::ResumedAtPosition: return "tcp_resumed_at_position";
    case StreamAnomaly::ResyncSkipped: return "stream_resync_skipped";
    case StreamAnomaly::ResumedAtHead: return "tcp_resumed_at_head";
  }
  return "unknown";
}

void Reassembler::on_syn(std::uint32_t initial_sequence) {
  if (state_ != StreamState::AwaitingStart) return;  // a retransmitted SYN changes nothing
  next_sequence_ = initial_sequence + 1;
  state_ = StreamState::Synced;
}

std::size_t Reassembler::allocated_bytes() const {
  if (!buffers_) return 0;
  std::size_t bytes = sizeof(Buffers) + buffers_->partial.capacity() + buffers_->read.capacity();
  for (const auto& [sequence, data] : buffers_->pending) bytes += data.capacity();
  return bytes;
}

void Reassembler::free_buffers_if_empty() {
  if (buffers_ && buffers_->partial.empty() && buffers_->pending.empty() && buffers_->read.empty()) buffers_.reset();
}

void Reassembler::acknowledged(std::uint32_t ack) {
  if (!buffers_ || buffers_->read.empty()) return;
  std::vector<std::uint8_t>& read = buffers_->read;
  const std::int32_t acked = distance(next_sequence_ - static_cast<std::uint32_t>(read.size()), ack);
  if (acked <= 0) return;
  if (static_cast<std::size_t>(acked) >= read.size()) {
    read = {};  // the capacity goes too
  } else {
    read.erase(read.begin(), read.begin() + acked);
  }
  free_buffers_if_empty();
}

bool Reassembler::agrees_with_read(std::uint32_t sequence, Bytes payload) const {
  if (state_ != StreamState::Synced || !buffers_ || buffers_->read.empty()) return true;
  const std::vector<std::uint8_t>& read = buffers_->read;
  // Where the segment starts in the kept bytes (negative: before them, acknowledged).
  const std::int64_t at = distance(next_sequence_ - static_cast<std::uint32_t>(read.size()), sequence);
  const std::int64_t from = std::max<std::int64_t>(at, 0);
  const std::int64_t to = std::min<std::int64_t>(at + static_cast<std::int64_t>(payload.size()),
                                                 static_cast<std::int64_t>(read.size()));
  if (from >= to) return true;
  return std::equal(read.begin() + from, read.begin() + to, payload.begin() + (from - at));
}

void Reassembler::lose_sync(StreamAnomaly why, const wire::ParseError* error, MessageSink& sink) {
  state_ = StreamState::LostSync;
  if (error != nullptr) framing_error_ = *error;
  buffers_.reset();
  resume_.reset();
  sink.on_stream_anomaly(why, error);
}

bool Reassembler::feed(std::uint32_t sequence, Bytes payload, MessageSink& sink) {
  if (state_ == StreamState::LostSync || payload.empty()) return true;
  if (state_ == StreamState::AwaitingStart) {
    const std::optional<std::uint32_t> start = find_start(sequence, payload, sink);
    if (!start) return true;  // skipped, or lost sync
    resume_.reset();
    next_sequence_ = *start;
    state_ = StreamState::Synced;
    // Bytes before a start found inside the segment were skipped (counted in resync).
    const std::int32_t skipped = distance(sequence, *start);
    if (skipped > 0) {
      payload = payload.subspan(static_cast<std::size_t>(skipped));
      sequence = *start;
    }
  }

  const std::int32_t offset = distance(next_sequence_, sequence);
  const auto length = static_cast<std::int64_t>(payload.size());
  if (offset + length <= 0) {
    sink.on_stream_anomaly(StreamAnomaly::Retransmission, nullptr);
    return true;
  }
  if (offset > 0) return buffer_ahead(sequence, static_cast<std::uint32_t>(offset), payload, sink);
  if (keep_read_ && refuse_when_full_ && unacknowledged_bytes() + static_cast<std::size_t>(offset + length) > kMaxUnacknowledgedBytes) {
    return false;  // dropped; TCP sends it again once the receiver has acknowledged more
  }
  if (offset < 0) {
    sink.on_stream_anomaly(StreamAnomaly::Overlap, nullptr);
    payload = payload.subspan(static_cast<std::size_t>(-offset));
  }
  const bool read = consume(payload, sink) && drain_pending(sink);
  free_buffers_if_empty();
  return read;
}

void Reassembler::resume(std::optional<std::uint32_t> boundary, std::optional<ResumeHead> head) {
  if (state_ != StreamState::AwaitingStart) return;
  resume_ = std::make_unique<Resume>();
  resume_->boundary = boundary;
  if (head && !head->bytes.empty() && head->bytes.size() <= kMaxResumeHeadBytes &&
      (!boundary || distance(*boundary, head->sequence) >= 0)) {
    resume_->head = std::move(head);
  }
}

// The first segment starts where the replicated head ends, and the two frame as the start
// of a message (a retransmission of an earlier segment, or bytes of another message, do not).
bool Reassembler::continues_head(std::uint32_t sequence, Bytes payload) const {
  if (!resume_ || !resume_->head) return false;
  const ResumeHead& head = *resume_->head;
  if (sequence != head.sequence + static_cast<std::uint32_t>(head.bytes.size())) return false;
  std::array<std::uint8_t, wire::kControlHeaderLength> start{};
  const std::size_t from_head = std::min(head.bytes.size(), start.size());
  std::copy_n(head.bytes.begin(), from_head, start.begin());
  const std::size_t from_payload = std::min(payload.size(), start.size() - from_head);
  std::copy_n(payload.begin(), from_payload, start.begin() + static_cast<std::ptrdiff_t>(from_head));
  return wire::frame_control_message(Bytes(start.data(), from_head + from_payload)).status !=
         wire::Frame::Status::Invalid;
}

// Where a direction picked up without its SYN starts; none: the segment was skipped or the
// direction lost sync.
std::optional<std::uint32_t> Reassembler::find_start(std::uint32_t sequence, Bytes payload, MessageSink& sink) {
  // A message cut before the failover: its head was passed by the other node, the rest
  // starts here. The stream starts at the head, its bytes already in (not delivered yet).
  if (continues_head(sequence, payload)) {
    sink.on_stream_anomaly(StreamAnomaly::ResumedAtHead, nullptr);
    if (!buffers_) buffers_ = std::make_unique<Buffers>();
    buffers_->partial = std::move(resume_->head->bytes);
    return sequence;
  }
  // The replicated boundary first: it cannot be framed wrongly by bytes a client chose.
  // Bytes before it were delivered by the node that carried the connection.
  if (resume_ && resume_->boundary && distance(*resume_->boundary, sequence) <= 0) {
    sink.on_stream_anomaly(StreamAnomaly::ResumedAtPosition, nullptr);
    return resume_->boundary;
  }
  const wire::Frame f = wire::frame_control_message(payload);
  if (f.status != wire::Frame::Status::Invalid) {
    sink.on_stream_anomaly(StreamAnomaly::MidStreamStart, nullptr);
    return sequence;
  }
  if (!resume_) {  // picked up mid-stream, not taken over: only a message start starts it
    lose_sync(StreamAnomaly::FramingError, &f.error, sink);
    return std::nullopt;
  }
  const std::optional<std::uint32_t> start = resync(sequence, payload, sink);
  if (!start && past_resync_limits()) {
    lose_sync(StreamAnomaly::FramingError, &f.error, sink);
  }
  return start;
}

bool Reassembler::past_resync_limits() const {
  return resume_->segments_skipped > kMaxResyncSegments || resume_->bytes_skipped > kMaxResyncBytes;
}

// A taken-over direction whose segment starts inside a message: the first offset where a
// whole header frames (RFC 2637 1.4, 2.x: length, type 1, magic cookie, a known control
// message type of that length) starts the stream; with none the whole segment is skipped.
// Skipped bytes pass as they are; nothing is decided from them (docs/packet-path.md).
std::optional<std::uint32_t> Reassembler::resync(std::uint32_t sequence, Bytes payload, MessageSink& sink) {
  // No scan past what may be skipped: the work per segment is bounded too.
  const std::size_t end = std::min<std::size_t>(payload.size(), kMaxResyncBytes + wire::kControlHeaderLength + 1);
  std::size_t at = 1;
  while (at + wire::kControlHeaderLength <= end &&
         wire::frame_control_message(payload.subspan(at)).status == wire::Frame::Status::Invalid) {
    ++at;
  }
  const bool found = at + wire::kControlHeaderLength <= end;
  const std::size_t skipped = found ? at : payload.size();
  resume_->segments_skipped += found ? 0 : 1;
  resume_->bytes_skipped += static_cast<std::uint32_t>(std::min<std::size_t>(skipped, kMaxResyncBytes + 1));
  if (past_resync_limits()) return std::nullopt;  // find_start loses sync
  sink.on_stream_anomaly(StreamAnomaly::ResyncSkipped, nullptr);
  if (!found) return std::nullopt;
  return sequence + static_cast<std::uint32_t>(at);
}

// A segment `offset` bytes past the next expected byte: kept until the gap fills.
bool Reassembler::buffer_ahead(std::uint32_t sequence, std::uint32_t offset, Bytes payload, MessageSink& sink) {
  if (!buffers_) buffers_ = std::make_unique<Buffers>();
  auto& pending = buffers_->pending;
  auto existing = pending.find(sequence);
  const std::size_t replaced = existing == pending.end() ? 0 : existing->second.size();
  if (offset > kReorderWindow || buffers_->pending_bytes - replaced + payload.size() > kMaxPendingBytes ||
      (replaced == 0 && pending.size() >= kMaxPendingSegments)) {
    free_buffers_if_empty();
    if (refuse_when_full_) return false;  // dropped; TCP sends it again once the gap fills
    lose_sync(StreamAnomaly::WindowExceeded, nullptr, sink);
    return true;
  }
  if (replaced >= payload.size()) {
    sink.on_stream_anomaly(StreamAnomaly::Retransmission, nullptr);
    return true;
  }
  buffers_->pending_bytes = buffers_->pending_bytes - replaced + payload.size();
  pending[sequence].assign(payload.begin(), payload.end());
  sink.on_stream_anomaly(StreamAnomaly::OutOfOrder, nullptr);
  return true;
}

bool Reassembler::drain_pending(MessageSink& sink) {
  bool progressed = true;
  while (progressed && state_ == StreamState::Synced && buffers_ && !buffers_->pending.empty()) {
    progressed = false;
    auto& pending = buffers_->pending;
    for (auto it = pending.begin(); it != pending.end(); ++it) {
      const std::int32_t offset = distance(next_sequence_, it->first);
      if (offset > 0) continue;
      std::vector<std::uint8_t> data = std::move(it->second);
      buffers_->pending_bytes -= data.size();
      pending.erase(it);
      const auto skip = static_cast<std::size_t>(-static_cast<std::int64_t>(offset));
      if (skip < data.size() && !consume(Bytes(data).subspan(skip), sink)) return false;
      progressed = true;
      break;  // the map changed: start the walk again
    }
  }
  return true;
}

// The stream ends before `sequence` (a message the sink left unread): what was read from
// there, the partial message and every segment past a gap go; the sender sends them again.
void Reassembler::leave_unread_from(std::uint32_t sequence) {
  const std::int32_t back = distance(sequence, next_sequence_);
  next_sequence_ = sequence;
  if (!buffers_) return;
  buffers_->partial = {};
  buffers_->pending.clear();
  buffers_->pending_bytes = 0;
  std::vector<std::uint8_t>& read = buffers_->read;
  read.resize(read.size() - std::min(read.size(), static_cast<std::size_t>(std::max(back, 0))));
}

bool Reassembler::consume(Bytes data, MessageSink& sink) {
  // The window starts at the first byte of the partial message, if any.
  const std::uint32_t window_sequence = partial_sequence();
  next_sequence_ += static_cast<std::uint32_t>(data.size());
  if (keep_read_) {
    if (!buffers_) buffers_ = std::make_unique<Buffers>();
    buffers_->read.insert(buffers_->read.end(), data.begin(), data.end());
  }
  Bytes window = data;
  const bool cut_before = buffers_ && !buffers_->partial.empty();
  if (cut_before) {
    buffers_->partial.insert(buffers_->partial.end(), data.begin(), data.end());
    window = buffers_->partial;
  }
  std::size_t used = 0;
  while (used < window.size()) {
    const Bytes rest = window.subspan(used);
    const wire::Frame f = wire::frame_control_message(rest);
    if (f.status == wire::Frame::Status::Invalid) {
      lose_sync(StreamAnomaly::FramingError, &f.error, sink);
      return true;
    }
    if (f.status == wire::Frame::Status::NeedMore) break;
    const std::uint32_t at = window_sequence + static_cast<std::uint32_t>(used);
    if (!sink.on_message(rest.first(f.length), at)) {
      leave_unread_from(at);
      return false;
    }
    delivered_bytes_ += f.length;
    used += f.length;
  }
  const Bytes rest = window.subspan(used);
  if (cut_before) {
    if (rest.empty()) {
      buffers_->partial = {};  // the capacity goes too
    } else {
      buffers_->partial.erase(buffers_->partial.begin(), buffers_->partial.begin() + static_cast<std::ptrdiff_t>(used));
    }
  } else if (!rest.empty()) {
    if (!buffers_) buffers_ = std::make_unique<Buffers>();
    buffers_->partial.assign(rest.begin(), rest.end());
  }
  return true;
}

}  // namespace pptp::stream
