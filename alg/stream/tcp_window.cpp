#include "alg/stream/tcp_window.hpp"

#include <algorithm>
#include <new>

namespace pptp::stream {

namespace f = wire::tcp_flags;

namespace {
// Sequence numbers compare modulo 2^32 (RFC 9293 3.4).
bool before(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }
bool after(std::uint32_t a, std::uint32_t b) { return before(b, a); }
std::uint32_t later(std::uint32_t a, std::uint32_t b) { return before(a, b) ? b : a; }

std::uint32_t payload_length(const wire::TcpSegment& s) { return static_cast<std::uint32_t>(s.payload.size()); }

// `a` lies in [from, to] modulo 2^32.
bool between(std::uint32_t a, std::uint32_t from, std::uint32_t to) { return a - from <= to - from; }
}  // namespace

std::string_view name_of(TcpWindowAnomaly a) {
  switch (a) {
    case TcpWindowAnomaly::OutOfWindow: return "out_of_window";
    case TcpWindowAnomaly::RstInWindow: return "rst_in_window";
    case TcpWindowAnomaly::RstOutOfWindow: return "rst_out_of_window";
    case TcpWindowAnomaly::FinOutOfSequence: return "fin_out_of_sequence";
    case TcpWindowAnomaly::SynOnLive: return "syn_on_live";
  }
  return "unknown";
}

TcpVerdict TcpWindow::judge(std::size_t sender, const wire::TcpSegment& seg) {
  Side& s = sides_[sender & 1U];
  Side& r = sides_[(sender & 1U) ^ 1U];
  if (seg.has(f::kSyn)) return judge_syn(s, r, seg);
  if (!s.seen) {
    if (seg.has(f::kRst)) {
      // The answer to a SYN from a side not seen yet: acceptable when it acknowledges the
      // SYN (RFC 9293 3.10.7.3, SYN-SENT).
      const bool acks_syn = seg.has(f::kAck) && r.syn_seen && seg.acknowledgment == r.end;
      return TcpVerdict{false, acks_syn, false,
                        acks_syn ? std::nullopt : std::optional(TcpWindowAnomaly::RstOutOfWindow)};
    }
    s.seen = true;  // picked up without its SYN
    s.start = s.end = s.in_order_end = seg.sequence;
  }
  const std::uint32_t length = payload_length(seg);
  const bool inside = in_window(s, r, seg.sequence, length + (seg.has(f::kFin) ? 1 : 0));
  if (seg.has(f::kRst)) {
    // RFC 5961 3.2: only a RST at RCV.NXT resets. We see RCV.NXT as the end of the sender's
    // data with no gap, or as the receiver's latest acknowledgment; not as the highest number
    // sent, which one blind data segment landed in the window would move to where the
    // attacker knows (the receiver holds such data out of order and challenges the RST).
    const bool exact = seg.sequence == s.in_order_end || (r.highest_ack && seg.sequence == *r.highest_ack);
    if (exact) return TcpVerdict{false, true, false, std::nullopt};
    return TcpVerdict{false, false, false,
                      inside ? TcpWindowAnomaly::RstInWindow : TcpWindowAnomaly::RstOutOfWindow};
  }
  if (!inside || !ack_acceptable(s, r, seg)) return TcpVerdict{false, false, false, TcpWindowAnomaly::OutOfWindow};
  TcpVerdict v{true, false, false, std::nullopt};
  if (seg.has(f::kFin)) {
    // In sequence: its data (if any) starts with no gap and the FIN comes at or after the
    // end of what was sent (new data, or a retransmission of the last data with the FIN
    // appended, as a sender whose data was lost sends it), or a retransmission of the FIN
    // already taken. A FIN inside data already sent is old to the receiver; one past the
    // right edge of its window is trimmed off (RFC 9293 3.10.7.4: SEG.SEQ + SEG.LEN - 1
    // below RCV.NXT + RCV.WND); window unknown: liberal.
    const std::uint32_t fin_sequence = seg.sequence + length;
    // At the end of the sender's data with no gap (data forged ahead does not move it;
    // reordered real data does once its gap fills, as the receiver's RCV.NXT).
    const bool in_order = !after(seg.sequence, s.in_order_end) && !before(fin_sequence, s.in_order_end);
    const bool fits = !r.highest_ack || !after(fin_sequence, r.right_edge);
    v.fin_acts = fits && (in_order || (s.fin && *s.fin == fin_sequence));
    if (v.fin_acts) {
      s.fin = fin_sequence;
      if (s.ahead) {
        s.ahead->fins_ahead.count = 0;
        drop_ahead_if_empty(s);
      }
    } else {
      v.anomaly = TcpWindowAnomaly::FinOutOfSequence;
      // It may have overtaken the data before it on a reordering link: the receiver keeps
      // it and takes it when that data has come (RFC 9293 3.10.7.4), and it is not sent
      // again. Kept, it acts once a data segment of the sender reaches it.
      if (fits && after(fin_sequence, s.in_order_end)) keep_fin_ahead(s, FinAhead{seg.sequence, fin_sequence});
    }
  }
  take(s, r, seg, length + (v.fin_acts ? 1 : 0));
  if (!seg.has(f::kFin) && length > 0) v.fin_acts = fin_ahead_reached(s, seg.sequence, seg.sequence + length);
  return v;
}

// Each FIN ahead is kept, as the receiver's out-of-order queue keeps each segment: one
// forged in the window must not replace the real one (the real FIN overtook only the data
// in flight, just past the gap).
void TcpWindow::keep_fin_ahead(Side& s, FinAhead ahead) {
  forget_fins_passed(s, ahead.from, ahead.fin);
  OutOfOrder* lists = ahead_lists(s);
  if (lists == nullptr) return;
  auto& fins = lists->fins_ahead;
  FinAhead* same = std::find_if(fins.begin(), fins.end(), [&](const FinAhead& k) { return k.fin == ahead.fin; });
  if (same != fins.end()) {
    if (before(ahead.from, same->from)) same->from = ahead.from;  // sent again with more data
    return;
  }
  fins.keep(ahead, s.in_order_end);
}

TcpWindow::OutOfOrder* TcpWindow::ahead_lists(Side& s) {
  if (!s.ahead) s.ahead.reset(new (std::nothrow) OutOfOrder{});
  return s.ahead.get();
}

void TcpWindow::drop_ahead_if_empty(Side& s) {
  if (s.ahead && s.ahead->empty()) s.ahead.reset();
}

// Data [seq, data_end) of the sender over a kept FIN's number: not the sender's FIN (it
// sends nothing after it). Only the segment's own numbers count, not the highest number
// sent, which data forged ahead moves too.
void TcpWindow::forget_fins_passed(Side& s, std::uint32_t seq, std::uint32_t data_end) {
  if (!s.ahead) return;
  s.ahead->fins_ahead.erase_if([&](const FinAhead& k) { return !before(k.fin, seq) && before(k.fin, data_end); });
  drop_ahead_if_empty(s);
}

// The data segment [seq, data_end) reaches a kept FIN's segment from below, without gap and
// without going past the FIN (the same rule as a FIN in sequence): the receiver now takes
// that FIN from its out-of-order queue. Where the sender's highest number went says
// nothing: a forged segment ahead moves it too.
bool TcpWindow::fin_ahead_reached(Side& s, std::uint32_t seq, std::uint32_t data_end) {
  forget_fins_passed(s, seq, data_end);
  if (!s.ahead) return false;
  auto& fins = s.ahead->fins_ahead;
  const FinAhead* reached = std::find_if(fins.begin(), fins.end(), [&](const FinAhead& k) {
    return !after(seq, k.from) && !before(data_end, k.from) && !after(data_end, k.fin);
  });
  if (reached == fins.end()) return false;
  const std::uint32_t fin = reached->fin;
  fins.count = 0;
  s.fin = fin;
  s.end = later(s.end, fin + 1);  // the FIN's own number
  advance_in_order(s, fin + 1);
  drop_ahead_if_empty(s);
  return true;
}

void TcpWindow::note_data(Side& s, std::uint32_t from, std::uint32_t to) {
  if (!after(from, s.in_order_end)) {
    advance_in_order(s, to);
    return;
  }
  OutOfOrder* lists = ahead_lists(s);
  if (lists == nullptr) return;
  // Overlapping or touching a held range: one range (a retransmission, or the next segment).
  for (Range& h : lists->held) {
    if (!after(from, h.to) && !before(to, h.from)) {
      if (before(from, h.from)) h.from = from;
      if (after(to, h.to)) h.to = to;
      return;
    }
  }
  lists->held.keep(Range{from, to}, s.in_order_end);
}

void TcpWindow::advance_in_order(Side& s, std::uint32_t to) {
  s.in_order_end = later(s.in_order_end, to);
  if (!s.ahead) return;
  auto& held = s.ahead->held;
  // Each pass takes every range it reaches; at most kMaxHeldRanges passes.
  for (bool taken = true; taken && held.count > 0;) {
    taken = false;
    held.erase_if([&](const Range& h) {
      if (after(h.from, s.in_order_end)) return false;
      if (after(h.to, s.in_order_end)) {
        s.in_order_end = h.to;
        taken = true;
      }
      return true;
    });
  }
  drop_ahead_if_empty(s);
}

TcpVerdict TcpWindow::judge_syn(Side& s, Side& r, const wire::TcpSegment& seg) {
  if (s.syn_seen && seg.sequence == s.start) return TcpVerdict{false, false, false, std::nullopt};  // retransmitted
  if (s.seen) return TcpVerdict{false, false, false, TcpWindowAnomaly::SynOnLive};
  s.seen = s.syn_seen = true;
  s.start = seg.sequence;
  s.end = s.in_order_end = seg.sequence;
  if (seg.window_scale) s.syn_scale = std::min(*seg.window_scale, kMaxWindowScale);
  // RFC 7323 2.2: scaling is in effect when both SYNs carry the option, else in neither
  // direction; the window of a SYN itself is never scaled.
  if (r.syn_seen) {
    const bool both = s.syn_scale && r.syn_scale;
    s.scale = both ? *s.syn_scale : 0;
    r.scale = both ? *r.syn_scale : 0;
  }
  const std::uint8_t scale = s.scale;
  s.scale = 0;
  take(s, r, seg, payload_length(seg) + 1);
  s.scale = scale;
  return TcpVerdict{true, false, false, std::nullopt};
}

bool TcpWindow::in_window(const Side& s, const Side& r, std::uint32_t seq, std::uint32_t length) {
  if (!r.highest_ack) return true;  // the receiver's window is not known yet
  // Not beyond what the receiver allowed, and not older than one window behind what the
  // sender already sent (conntrack's two sequence bounds).
  if (after(seq, r.right_edge)) return false;
  return !before(seq + length, s.end - std::max<std::uint32_t>(r.max_window, 1));
}

// RFC 5961 5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT, in the receiver's terms; a
// blind injection must then guess the acknowledgment too.
bool TcpWindow::ack_acceptable(const Side& s, const Side& r, const wire::TcpSegment& seg) {
  if (!seg.has(f::kAck) || !s.highest_ack) return true;
  return between(seg.acknowledgment, *s.highest_ack - std::max<std::uint32_t>(s.max_window, 1), r.end);
}

void TcpWindow::take(Side& s, Side& r, const wire::TcpSegment& seg, std::uint32_t length) {
  // A segment without data says nothing of what was sent: it must not move the number a
  // RST or FIN has to match.
  if (length > 0) {
    s.end = later(s.end, seg.sequence + length);
    note_data(s, seg.sequence, seg.sequence + length);
  }
  if (!seg.has(f::kAck)) return;
  // Only an acknowledgment of what the receiver really sent moves the window: an ACK from
  // nowhere (zero, or beyond everything sent) would open it for an attacker.
  if (!r.seen || !between(seg.acknowledgment, r.start, r.end)) return;
  const std::uint32_t window = static_cast<std::uint32_t>(seg.window) << s.scale;
  const bool first = !s.highest_ack;
  s.highest_ack = first ? seg.acknowledgment : later(*s.highest_ack, seg.acknowledgment);
  // The receiver has all of it: a gap there was filled (reordered data seen late or not at all).
  advance_in_order(r, seg.acknowledgment);
  s.right_edge = first ? seg.acknowledgment + window : later(s.right_edge, seg.acknowledgment + window);
  s.max_window = std::max(s.max_window, window);
}

}  // namespace pptp::stream
