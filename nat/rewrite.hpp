// Packet rewriting for PPTP NAT: addresses and GRE keys in place, and Call IDs in the TCP
// byte stream of a control connection. Every rewrite keeps the packet's length (so TCP
// sequence numbers never shift) and leaves the checksums right.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "alg/core/bytes.hpp"
#include "alg/wire/control_message.hpp"
#include "alg/wire/gre.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::nat {

// Which Call ID field NAT rewrites in which control message, by the side that sends it
// (RFC 2637 sections 2.7 to 2.15). Only fields holding the PNS's Call ID are touched:
//  - PNS -> PAC, its own "Call ID": Outgoing-Call-Request and Incoming-Call-Reply allocate
//    the outside Call ID, Call-Clear-Request uses it;
//  - PAC -> PNS, the "Peer's Call ID": Outgoing-Call-Reply, Incoming-Call-Connected,
//    WAN-Error-Notify and Set-Link-Info (which only Windows servers send this way) are
//    translated back;
//  - PAC -> PNS, Call-Disconnect-Notify's "Call ID": the PAC's own per 2.13, left as it is,
//    but Windows servers put the PNS's (outside) Call ID there; that one is translated back
//    (DisconnectCallId: the caller decides which reading names a call, docs/protocol-notes.md).
// Set-Link-Info from the PNS carries the PAC's Call ID and stays as it is.
enum class CallIdRewrite : std::uint8_t { None, Allocate, ToOutside, ToInside, DisconnectCallId };

struct CallIdField {
  CallIdRewrite rewrite = CallIdRewrite::None;
  std::uint16_t offset = 0;  // from the start of the message
};

// `from_pns`: the message travels PNS -> PAC.
CallIdField call_id_field(wire::ControlMessageType type, bool from_pns);

// Two bytes to write at a TCP sequence number: a Call ID rewrite remembered so that it also
// applies to a retransmission of the same bytes, and to a segment that carried only part
// of the message.
struct StreamPatch {
  std::uint32_t sequence = 0;
  std::uint16_t value = 0;
};

inline constexpr std::size_t kMaxStreamPatches = 32;  // per direction; oldest dropped first

class StreamPatches {
 public:
  // A second patch at the same sequence number replaces the first (a field decided when it
  // was whole, then seen again in its whole message).
  void add(std::uint32_t sequence, std::uint16_t value);
  std::optional<std::uint16_t> find(std::uint32_t sequence) const;
  // Applies every patch that falls (even partly) in [sequence, sequence + payload.size()).
  // Returns true if a byte changed.
  bool apply(std::uint32_t sequence, std::span<std::uint8_t> payload) const;
  // A segment starting at `sequence` may hold a field whose patch the bound pushed out: it
  // must not leave (the caller drops it; docs/packet-path.md, "Held segments").
  bool lost_before(std::uint32_t sequence) const {
    return evicted_end_ && static_cast<std::int32_t>(sequence - *evicted_end_) < 0;
  }
  std::size_t size() const { return count_; }

 private:
  std::array<StreamPatch, kMaxStreamPatches> ring_{};
  std::size_t next_ = 0;
  std::size_t count_ = 0;
  std::optional<std::uint32_t> evicted_end_;  // one past the latest byte of an evicted patch
};

// In-place rewrites of a whole IPv4 packet whose headers the caller parsed. Each fixes the
// IPv4 header checksum, and the TCP checksum where TCP follows.
void set_ipv4_source(std::span<std::uint8_t> packet, wire::Ipv4Address address);
void set_ipv4_destination(std::span<std::uint8_t> packet, wire::Ipv4Address address);
// GRE key (the receiver's Call ID) of a PPTP GRE packet.
void set_gre_call_id(std::span<std::uint8_t> packet, std::uint16_t call_id);
// Where a TCP segment's payload lies in its IPv4 packet, from the headers parsed once
// (alg/wire/ip): a held copy of the packet keeps it beside its bytes.
struct TcpPayload {
  std::size_t ip_header_length = 0;
  std::size_t offset = 0;  // from the start of the packet
  std::size_t length = 0;
  std::uint32_t sequence = 0;  // of its first byte (after a SYN: the SYN's number + 1)
};
TcpPayload tcp_payload_of(Bytes packet, const wire::Ipv4Packet& ip, const wire::TcpSegment& tcp);
// The same from the bytes alone (parsed with alg/wire/ip), where no view is at hand; empty
// if the packet is not IPv4/TCP.
std::optional<TcpPayload> tcp_payload_of(Bytes packet);
// Applies stream patches to a TCP segment's payload and fixes the TCP checksum.
bool patch_tcp_payload(std::span<std::uint8_t> packet, const TcpPayload& at, const StreamPatches& patches);

}  // namespace pptp::nat
