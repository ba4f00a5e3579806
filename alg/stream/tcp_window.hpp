// Sequence windows of one TCP connection, seen from the middle (RFC 9293 3.10.7, RFC 5961,
// in the spirit of Linux conntrack's tcp_in_window): which segments an endpoint would accept
// and which RST, FIN or SYN would really change its state. A middlebox that acts on a
// segment the endpoints ignore lets an off-path host tear down or reset what it cannot see.
//
// Per sender: the next sequence number after everything it sent (what the receiver expects,
// RCV.NXT, once all has arrived), the highest acknowledgment it sent, and its advertised
// window, scaled as its SYN said (RFC 7323 2.2). Until the receiver's window is known (the
// connection picked up without its handshake, no plausible ACK yet) segments are judged in
// window: liberal, as conntrack is on pick-up. Pure: no clock, no I/O.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "alg/wire/ip.hpp"

namespace pptp::stream {

inline constexpr std::uint8_t kMaxWindowScale = 14;  // RFC 7323 2.3
// FINs kept per sender ahead of its data (the receiver's out-of-order queue holds each): a
// forged one beside the real one must not push it out.
inline constexpr std::size_t kMaxFinsAhead = 4;
// Ranges of data kept per sender past a gap (the receiver's out-of-order queue): when the gap
// fills, the end of the data with no gap jumps over them, as the receiver's RCV.NXT does.
inline constexpr std::size_t kMaxHeldRanges = 4;

enum class TcpWindowAnomaly : std::uint8_t {
  OutOfWindow,       // data or a FIN outside the receiver's window: not taken
  RstInWindow,       // RST in the window, not at the expected number (RFC 5961 3.2): no effect
  RstOutOfWindow,    // RST outside the window: no effect
  FinOutOfSequence,  // FIN not at the next expected number: no effect
  SynOnLive,         // SYN on a connection with state: no reset
};
std::string_view name_of(TcpWindowAnomaly a);

struct TcpVerdict {
  bool take = false;      // parse the segment: its data, SYN and ACK
  bool rst_acts = false;  // a RST at the expected number: the connection ends
  bool fin_acts = false;  // a FIN in sequence (or one that came ahead of this data): the sender is done
  std::optional<TcpWindowAnomaly> anomaly;
};

class TcpWindow {
 public:
  // `sender` is 0 or 1 (the caller's direction). Updates the state only for a segment taken.
  TcpVerdict judge(std::size_t sender, const wire::TcpSegment& segment);
  // Each side acknowledged what the other really sent: both proved they are in the
  // connection, not only that they know its addresses and ports (a pick-up mid-stream takes
  // any first segment).
  bool established_both_ways() const { return sides_[0].highest_ack && sides_[1].highest_ack; }
  // The highest acknowledgment side `side` sent of the other's data, if any was taken.
  std::optional<std::uint32_t> highest_ack(std::size_t side) const { return sides_[side].highest_ack; }
  // Side `side` has data or a FIN held past a gap (its out-of-order lists are allocated).
  bool holds_out_of_order(std::size_t side) const { return sides_[side].ahead != nullptr; }

 private:
  // A FIN that came ahead of the data before it: its segment's first number (its data, if
  // any, starts there) and the FIN's own number.
  struct FinAhead {
    std::uint32_t from = 0;
    std::uint32_t fin = 0;
  };
  struct Range {
    std::uint32_t from = 0, to = 0;  // [from, to)
  };
  // What a receiver's out-of-order queue holds past the end of the data with no gap, up to
  // N items (each with its first number, `from`): when full, the one farthest past that end
  // goes, so a flock forged far ahead does not push out what lies just past the gap.
  template <class T, std::size_t N>
  struct Ahead {
    std::array<T, N> items{};
    std::size_t count = 0;
    T* begin() { return items.data(); }
    T* end() { return items.data() + count; }
    template <class Pred>
    void erase_if(Pred pred) {
      count = static_cast<std::size_t>(std::remove_if(begin(), end(), pred) - begin());
    }
    void keep(const T& item, std::uint32_t in_order_end) {
      if (count < N) {
        items[count++] = item;
        return;
      }
      const auto past = [&](const T& t) { return t.from - in_order_end; };
      T* farthest = std::max_element(begin(), end(), [&](const T& a, const T& b) { return past(a) < past(b); });
      if (past(item) < past(*farthest)) *farthest = item;
    }
  };
  // A receiver's out-of-order queue as far as we follow it: allocated only while a sender
  // has data or a FIN past a gap (rare on a control connection), so that a connection in
  // order costs two pointers instead of both lists.
  struct OutOfOrder {
    Ahead<Range, kMaxHeldRanges> held;          // data past a gap, not yet reached
    Ahead<FinAhead, kMaxFinsAhead> fins_ahead;  // in the window, ahead of the data before them
    bool empty() const { return held.count == 0 && fins_ahead.count == 0; }
  };
  struct Side {
    std::unique_ptr<OutOfOrder> ahead;  // null while nothing is held
    std::uint32_t start = 0;  // first sequence number seen (the ISN after a SYN)
    std::uint32_t end = 0;    // one past the highest sequence number sent (SYN and FIN count)
    // One past the sender's data with no gap before it, or what the receiver acknowledged if
    // more: the receiver's RCV.NXT as far as can be told. Data forged ahead (a gap before it)
    // moves `end`, never this.
    std::uint32_t in_order_end = 0;
    std::uint32_t right_edge = 0;              // highest ack + window it advertised
    std::uint32_t max_window = 0;              // largest window it advertised, scaled
    std::optional<std::uint32_t> fin;          // sequence number of its FIN
    std::optional<std::uint32_t> highest_ack;  // plausible acknowledgments only
    std::optional<std::uint8_t> syn_scale;     // Window Scale in its SYN
    std::uint8_t scale = kMaxWindowScale;      // in effect: unknown until both SYNs are seen
    bool seen = false;
    bool syn_seen = false;
  };
  TcpVerdict judge_syn(Side& s, Side& r, const wire::TcpSegment& segment);
  static bool in_window(const Side& s, const Side& r, std::uint32_t seq, std::uint32_t length);
  static bool ack_acceptable(const Side& s, const Side& r, const wire::TcpSegment& segment);
  static void take(Side& s, Side& r, const wire::TcpSegment& segment, std::uint32_t length);
  static void keep_fin_ahead(Side& s, FinAhead ahead);
  // The sender's out-of-order lists, made when first needed (null if memory ran out: then
  // nothing is held, as when a list is full); dropped once both are empty.
  static OutOfOrder* ahead_lists(Side& s);
  static void drop_ahead_if_empty(Side& s);
  // Data [from, to) of the sender: the end with no gap moves, or the range is held.
  static void note_data(Side& s, std::uint32_t from, std::uint32_t to);
  // The end with no gap moved to (at least) `to`: the held ranges it reaches are taken.
  static void advance_in_order(Side& s, std::uint32_t to);
  static void forget_fins_passed(Side& s, std::uint32_t seq, std::uint32_t data_end);
  // A data segment of the sender [seq, data_end) reached a FIN that came ahead of it: that
  // FIN acts now.
  static bool fin_ahead_reached(Side& s, std::uint32_t seq, std::uint32_t data_end);

  std::array<Side, 2> sides_{};
};

}  // namespace pptp::stream
