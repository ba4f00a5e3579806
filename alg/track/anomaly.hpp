// Every anomaly the tracker can see has a name and a counter.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace pptp::track {

enum class Anomaly : std::uint8_t {
  // TCP stream of a control connection
  TcpRetransmission,
  TcpOverlap,
  TcpRetransmissionDiffers,
  TcpOutOfOrder,
  TcpMidStreamStart,
  TcpBadChecksum,
  TcpOutOfWindow,
  TcpRstInWindow,
  TcpRstOutOfWindow,
  TcpFinOutOfSequence,
  TcpSynOnLiveConnection,
  StreamWindowExceeded,
  StreamFramingError,
  StreamGapAtClose,
  TcpResumedAtPosition,
  StreamResyncSkipped,
  TcpResumedAtHead,
  TakenOverEstablished,
  // control messages
  MessageReservedNonZero,
  MessageNumberLengthTooLong,
  WrongSender,
  NotEstablished,
  CallSetUpDeferred,
  UnexpectedMessage,
  UnknownCall,
  DuplicateCallId,
  PacCallIdTaken,
  CallIdReusedWhileClearing,
  AfterRefusal,
  TooManyCalls,
  IncomingCallRefused,
  TooManyConnections,
  ConnectionEvicted,
  SetLinkInfoFromPac,
  DisconnectNamesPnsCallId,
  EchoReplyUnmatched,
  // GRE
  GreNotPptp,
  GreMalformed,
  GreUnknownCall,
  GreBeforeEstablished,
  GreKeyCollision,
  PppMalformed,
  // PPP authentication (auth_follower.hpp)
  AuthWrongSide,
  AuthUnsolicitedResponse,
  AuthUnmatchedVerdict,
  AuthConflictingClaim,
  AuthPapAfterAck,
  // IP
  IpMalformed,
  IpFragment,
  kCount,
};
inline constexpr std::size_t kAnomalyCount = static_cast<std::size_t>(Anomaly::kCount);

struct AnomalyInfo {
  Anomaly anomaly;
  std::string_view name;
  std::string_view meaning;
};

// One row per anomaly: its stable name (logs, JSON, metrics) and what it means.
inline constexpr std::array<AnomalyInfo, kAnomalyCount> kAnomalyTable{{
    {Anomaly::TcpRetransmission, "tcp_retransmission", "a control segment wholly sent before"},
    {Anomaly::TcpOverlap, "tcp_overlap", "a control segment partly sent before"},
    {Anomaly::TcpRetransmissionDiffers, "tcp_retransmission_differs", "a control segment carries other bytes than were read at its sequence numbers (inline): dropped, the receiver gets only what was read"},
    {Anomaly::TcpOutOfOrder, "tcp_out_of_order", "a control segment ahead of a gap, kept"},
    {Anomaly::TcpMidStreamStart, "tcp_mid_stream_start", "control connection picked up without its SYN"},
    {Anomaly::TcpBadChecksum, "tcp_bad_checksum", "a control segment whose TCP checksum is wrong: not parsed"},
    {Anomaly::TcpOutOfWindow, "tcp_out_of_window", "a control segment outside the receiver's window: not parsed"},
    {Anomaly::TcpRstInWindow, "tcp_rst_in_window", "a RST inside the window but not at the expected sequence number: not acted on (RFC 5961 3.2)"},
    {Anomaly::TcpRstOutOfWindow, "tcp_rst_out_of_window", "a RST outside the window: not acted on (RFC 5961 3.2)"},
    {Anomaly::TcpFinOutOfSequence, "tcp_fin_out_of_sequence", "a FIN not at the next expected sequence number: not acted on"},
    {Anomaly::TcpSynOnLiveConnection, "tcp_syn_on_live_connection", "a SYN on the 4-tuple of a live control connection: ignored"},
    {Anomaly::StreamWindowExceeded, "stream_window_exceeded", "gap not filled within the reassembly bounds: lost sync"},
    {Anomaly::StreamFramingError, "stream_framing_error", "bytes that are no PPTP control message: lost sync"},
    {Anomaly::StreamGapAtClose, "stream_gap_at_close", "control connection ended with bytes missing or a message cut"},
    {Anomaly::TcpResumedAtPosition, "tcp_resumed_at_position", "a taken-over control connection resumed at the replicated message boundary; bytes before it were delivered by the other node"},
    {Anomaly::StreamResyncSkipped, "stream_resync_skipped", "a taken-over control connection skipped bytes before a message start: they pass unparsed"},
    {Anomaly::TcpResumedAtHead, "tcp_resumed_at_head", "a taken-over control connection resumed with the replicated head of a message the other node passed in part: the message is read whole"},
    {Anomaly::TakenOverEstablished, "taken_over_established", "a taken-over control connection's window was proven both ways: its new calls are followed"},
    {Anomaly::MessageReservedNonZero, "reserved_nonzero", "a Reserved field is not zero (RFC 2637: MUST be 0)"},
    {Anomaly::MessageNumberLengthTooLong, "number_length_too_long", "a number length field above 64"},
    {Anomaly::WrongSender, "wrong_sender", "a message the RFC lets only the other role send"},
    {Anomaly::NotEstablished, "not_established", "a call or echo message before the control connection is up (inline: a PNS's Outgoing-Call-Request or Incoming-Call-Reply is refused)"},
    {Anomaly::CallSetUpDeferred, "call_set_up_deferred", "a PNS's call set-up before the connection is established (start not yet answered, or taken over and its window not yet proven), or reusing the Call ID of a call it is clearing while no hold of that call's outside Call ID is left, inline: left unread and its segment dropped, read again when TCP sends it again"},
    {Anomaly::UnexpectedMessage, "unexpected_message", "a message the connection state does not allow"},
    {Anomaly::UnknownCall, "unknown_call", "a message names a Call ID that no call on the connection has"},
    {Anomaly::DuplicateCallId, "duplicate_call_id", "a new call reuses a Call ID still live on the connection"},
    {Anomaly::PacCallIdTaken, "pac_call_id_taken", "the server gave a call the Call ID another client's call has at that server through the same public address (Poptop's pptpd does when a connection has made more than 128 calls, or its ranges wrapped): the later call ends, its GRE is not forwarded and its client is told General Error where the Outgoing-Call-Reply's Result Code is still ours to rewrite, unless the holder's call ran past its range (then its connection is cut)"},
    {Anomaly::CallIdReusedWhileClearing, "call_id_reused_while_clearing", "the PNS named the Call ID of a call it is clearing again before the PAC's Call-Disconnect-Notify: the old call ends"},
    {Anomaly::AfterRefusal, "after_refusal", "a PNS message after a call set-up the gateway refused (inline): not read, the server never gets it"},
    {Anomaly::TooManyCalls, "too_many_calls", "calls on one control connection above the limit (inline: a PNS's Outgoing-Call-Request is refused)"},
    {Anomaly::IncomingCallRefused, "incoming_call_refused", "an Incoming-Call-Request while the connection's calls the PAC placed and the PNS has not answered are at their limit, or the client's budgets are spent: no call opens, and the PNS's accepting Incoming-Call-Reply to it is refused (inline)"},
    {Anomaly::TooManyConnections, "too_many_connections", "control connections above the limit: the segment is dropped"},
    {Anomaly::ConnectionEvicted, "connection_evicted", "the connection table full, the oldest connection no server accepted (half-open, picked up mid-stream, or waiting for its Start-Control-Connection-Reply) closed to make room for a new one"},
    {Anomaly::SetLinkInfoFromPac, "set_link_info_from_pac", "Set-Link-Info sent by the PAC (RFC: PNS only; Windows servers do it)"},
    {Anomaly::DisconnectNamesPnsCallId, "disconnect_names_pns_call_id", "Call-Disconnect-Notify carrying the PNS's Call ID instead of the PAC's (seen from Windows servers)"},
    {Anomaly::EchoReplyUnmatched, "echo_reply_unmatched", "an Echo-Reply whose Identifier no Echo-Request had"},
    {Anomaly::GreNotPptp, "gre_not_pptp", "GRE that is not version 1 carrying PPP"},
    {Anomaly::GreMalformed, "gre_malformed", "enhanced GRE with a bad header"},
    {Anomaly::GreUnknownCall, "gre_unknown_call", "GRE whose addresses and Call ID match no call"},
    {Anomaly::GreBeforeEstablished, "gre_before_established", "GRE of a call not yet established"},
    {Anomaly::GreKeyCollision, "gre_key_collision", "two calls would receive GRE on the same addresses and Call ID"},
    {Anomaly::PppMalformed, "ppp_malformed", "a malformed PPP frame or authentication packet in GRE"},
    {Anomaly::AuthWrongSide, "auth_wrong_side", "an authentication packet only the other side may send (a name from the PAC, a verdict from the PNS): ignored"},
    {Anomaly::AuthUnsolicitedResponse, "auth_unsolicited_response", "a CHAP or EAP Response answering no open Challenge or Request Identifier: its name counts for nothing"},
    {Anomaly::AuthUnmatchedVerdict, "auth_unmatched_verdict", "an Ack, Nak, Success or Failure answering no open request with a name: credited to nobody"},
    {Anomaly::AuthConflictingClaim, "auth_conflicting_claim", "two names answer the same Identifier: the server's verdict is credited to neither"},
    {Anomaly::AuthPapAfterAck, "auth_pap_after_ack", "a PAP request naming another user after the server acked one: servers answer repeats as the first (RFC 1334 2.2.1), so it counts for nothing"},
    {Anomaly::IpMalformed, "ip_malformed", "an IPv4 or TCP header that does not parse"},
    {Anomaly::IpFragment, "ip_fragment", "an IP fragment (not reassembled here)"},
}};

inline constexpr std::string_view name_of(Anomaly a) {
  return kAnomalyTable[static_cast<std::size_t>(a)].name;
}

using AnomalyCounters = std::array<std::uint64_t, kAnomalyCount>;

}  // namespace pptp::track
