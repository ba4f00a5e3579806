// Each leg of a proxied control connection is checked on its own (RFC 2637 2.5): after
// kEchoIdle of silence the proxy sends an Echo-Request; if the peer then stays silent for
// kEchoWait, it is taken as gone and its leg ends, which clears the other leg at once (the
// relay's on_closed). Unless its TCP has not acknowledged what we sent and has had to send
// again since the Echo: then the silence is the link's, and the leg waits for TCP's next
// retransmission to get through (kEchoLinkGrace).
// A leg we do not read is not asked; a leg whose peer does not take what is queued for it is
// taken as not reading after kWriteStall. Pure: the caller passes the time and TCP's state in.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace pptp::proxy {

using Clock = std::chrono::steady_clock;
inline constexpr std::chrono::seconds kEchoIdle{60};  // the RFC's keep-alive interval
inline constexpr std::chrono::seconds kEchoWait{60};  // then the peer is gone
inline constexpr std::chrono::seconds kKeepaliveTick{5};
// An Echo-Request the peer's TCP has not acknowledged after kEchoWait: the link may be down, not
// the peer. TCP's back-off doubles the time between retransmissions (here about 56 and 112 s
// after the Echo), so a link back at 60 s hears nothing until the next one: a 64-s outage ended
// the session 3 of 3 times (s33 review). The leg is held until one retransmission after
// kEchoWait has had a tick for its ACK; that one comes within about kEchoWait of it (each wait
// is at most the time since the Echo), so this bound is a backstop.
inline constexpr std::chrono::seconds kEchoLinkGrace{75};
// A client that has not sent its Start-Control-Connection-Request (2.1) by then is gone: an
// Echo answered before the start would otherwise hold its connection for ever.
inline constexpr std::chrono::seconds kStartDeadline{60};
// A server that has not accepted the router's connection and answered its
// Start-Control-Connection-Request (2.2) by then is given up (checked each tick: 20 to 25 s,
// after the SYNs Linux sends at about 0, 1, 3, 7 and 15 s); the client hears
// Start-Control-Connection-Reply "general error". The kernel alone would try to connect for
// about 127 s, and a server that accepted but never answered held the client 120 s (the
// keepalive), each with two descriptors and the client's place in the limits (s29, s30
// reviews).
inline constexpr std::chrono::seconds kServerStartDeadline{20};

// A leg whose own queue is past the read pause (16 KiB) and whose write has not completed for
// this long: its peer does not read (as long as an Echo-Request gets for its answer). The
// write is up to about 20 KiB behind a full send buffer: a peer reading under about 340 bytes
// a second is cut (s32 review: 289 and 323 B/s cut, 413 held).
inline constexpr std::chrono::seconds kWriteStall = kEchoWait;
// A leg closed with a backlog is flushed unless its write has been waiting this long: a
// backlog the proxy has just queued (a server's end with 150 calls: 22 KB of
// Call-Disconnect-Notify) is not a peer that does not read (s32 review); one whose peer
// stopped reading is reset at once (s31: what it did not take freed in the router).
inline constexpr std::chrono::seconds kCloseStall{2};

// PeerGone: its TCP took the Echo-Request and no answer came; LinkDown: its TCP did not take
// it within kEchoWait + kEchoLinkGrace.
enum class KeepaliveStep : std::uint8_t { Nothing, SendEcho, PeerGone, LinkDown, PeerNotReading };

// What the session knows of a leg at a tick.
struct LegWatch {
  bool read_paused = false;  // we do not read it (a backlog on either leg): its silence is ours
  bool backlogged = false;   // its own queue is past the read pause: its peer is the one behind
  // TCP's state (TCP_INFO), read only when echo_overdue(): one getsockopt per overdue leg a tick.
  bool unacknowledged = false;   // the peer's TCP has not acknowledged all we sent (tcpi_unacked)
  std::uint32_t retransmissions = 0;  // segments the leg's TCP sent again (tcpi_total_retrans)
};

class Keepalive {
 public:
  explicit Keepalive(Clock::time_point now) : last_heard_(now), last_written_(now) {}
  // A whole message arrived on the leg (any message proves the peer alive, not only
  // Echo-Reply; bytes that make no message do not: a byte now and then would hold it).
  void heard(Clock::time_point now) {
    last_heard_ = now;
    echo_sent_ = false;
    link_ = {};
  }
  // The Echo-Request was queued when the leg's TCP had sent `retransmissions` segments again
  // (TCP_INFO): only retransmissions after it say that the link lost it.
  void echo_sent(std::uint32_t retransmissions) { link_.at_echo = retransmissions; }
  // A write toward the peer started or completed.
  void wrote(Clock::time_point now) { last_written_ = now; }
  bool write_stalled(Clock::time_point now, std::chrono::seconds at_least) const {
    return now - last_written_ >= at_least;
  }
  // While both legs were read-paused (one peer not reading) the one checked first was taken
  // as gone for a silence that was ours (s29-s31 open item): a paused leg is not asked, and
  // only the leg whose writes stall is blamed.
  KeepaliveStep tick(Clock::time_point now, LegWatch leg = {}) {
    if (leg.backlogged && write_stalled(now, kWriteStall)) return KeepaliveStep::PeerNotReading;
    if (leg.read_paused) {
      heard(now);  // asked afresh once read again
      return KeepaliveStep::Nothing;
    }
    if (!echo_sent_) {
      if (now - last_heard_ < kEchoIdle) return KeepaliveStep::Nothing;
      echo_sent_ = true;
      echo_at_ = now;
      return KeepaliveStep::SendEcho;
    }
    if (!echo_overdue(now)) return KeepaliveStep::Nothing;
    return overdue_step(now, leg);
  }
  // An Echo-Request unanswered for kEchoWait: the caller then asks the kernel for the leg's
  // LegWatch::unacknowledged and LegWatch::retransmissions.
  bool echo_overdue(Clock::time_point now) const { return echo_sent_ && now - echo_at_ >= kEchoWait; }

 private:
  Clock::time_point last_heard_;
  Clock::time_point last_written_;
  Clock::time_point echo_at_{};
  bool echo_sent_ = false;
  // The wait past kEchoWait while the peer's TCP had not taken what we sent.
  struct LinkWait {
    bool waiting = false;
    std::uint32_t at_echo = 0;          // TCP's retransmissions when the Echo was queued
    std::uint32_t retransmissions = 0;  // TCP's count when the wait began
    bool resent = false;                // a tick has seen a retransmission since
    std::optional<Clock::time_point> acked_at;  // when its TCP was first seen to have everything
  };
  LinkWait link_;

  KeepaliveStep overdue_step(Clock::time_point now, const LegWatch& leg) {
    const bool past_grace = now - echo_at_ >= kEchoWait + kEchoLinkGrace;
    // Bytes in flight alone are no outage: a peer that reads slowly or acknowledges late while
    // the other leg sends has some at every tick (s34 review: such a leg ran the whole grace,
    // retransmissions=0). A link that lost the Echo has had TCP send again since.
    const bool link_lost_it = leg.unacknowledged && leg.retransmissions > link_.at_echo;
    if (!link_lost_it) {
      // It took the Echo and did not answer; after a wait, the Echo-Reply comes with the ACK or
      // just after it: a tick for it.
      if (!link_.waiting || past_grace) return KeepaliveStep::PeerGone;
      if (!link_.acked_at) link_.acked_at = now;
      return now - *link_.acked_at >= kKeepaliveTick ? KeepaliveStep::PeerGone : KeepaliveStep::Nothing;
    }
    link_.acked_at.reset();
    if (past_grace) return KeepaliveStep::LinkDown;
    if (!link_.waiting) {
      link_.waiting = true;
      link_.retransmissions = leg.retransmissions;
      return KeepaliveStep::Nothing;
    }
    if (leg.retransmissions == link_.retransmissions) return KeepaliveStep::Nothing;  // not tried again yet
    if (!link_.resent) {
      link_.resent = true;  // a tick for the ACK of the retransmission
      return KeepaliveStep::Nothing;
    }
    return KeepaliveStep::LinkDown;
  }
};

}  // namespace pptp::proxy
