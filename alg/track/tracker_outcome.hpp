// What the tracker tells its caller about one packet (Tracker::on_tcp_segment, on_gre):
// the connection and call it belongs to, and whether the caller should drop it.
#pragma once

#include <cstddef>
#include <optional>

#include "alg/track/anomaly.hpp"
#include "alg/track/auth_follower.hpp"
#include "alg/track/direction.hpp"

namespace pptp::track {

struct ControlConnection;  // tracker.hpp
struct Call;

struct SegmentOutcome {
  ControlConnection* connection = nullptr;
  std::size_t messages = 0;
  std::size_t anomalies = 0;
  // Inline only (Tracker::set_inline): the segment lies ahead of a gap that does not fit the
  // reassembly bounds; nothing of it was taken, and the caller should drop it.
  bool refused = false;
  // An observer refused a message of this segment (on_pns_call_id): the caller drops it.
  bool drop = false;
  // Inline: bytes of the segment already read carry other values now
  // (tcp_retransmission_differs); nothing of it was taken, and the caller drops it.
  bool differs = false;
  // Inline: a call set-up in it was left unread (defers_call_set_up): the stream ends before
  // it, and the caller drops the segment; TCP sends it again.
  bool deferred = false;
  // The segment changed nothing: a bad checksum (tcp_bad_checksum), outside the window, a
  // SYN on a live connection, or a RST not at the expected sequence number. The endpoints
  // judge it the same way; a RST inside the window should still reach them (RFC 5961 3.2:
  // the receiver answers with a challenge ACK).
  std::optional<Anomaly> ignored;
  // A RST in the window not at the expected number, or a FIN out of sequence: the receiver
  // does not take it (its data, if any, may still be taken). Conntrack before the queue may
  // have (gateway.cpp keep_conntrack).
  bool close_ignored = false;
  // No room for a new connection (kMaxControlConnections, none closed or unproven to make
  // room): nothing of it is followed, so the caller drops the segment (docs/packet-path.md,
  // "A full table"); passed, its call set-ups would leave untranslated.
  bool table_full = false;
};

enum class GreVerdict : std::uint8_t { Matched, NotPptp, Malformed, UnknownCall };

struct GreOutcome {
  GreVerdict verdict = GreVerdict::UnknownCall;
  ControlConnection* connection = nullptr;
  Call* call = nullptr;
  Direction direction = Direction::PnsToPac;
  // Matched GRE with a PPP frame: link control and authentication, or network-layer data
  // (which should not pass while the call's user is undecided).
  std::optional<PppFrameClass> ppp;
};

}  // namespace pptp::track
