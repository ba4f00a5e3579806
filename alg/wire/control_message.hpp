// PPTP control messages (RFC 2637 section 2): the 15 message types, their table, framing,
// parsing and serialization. Pure functions over byte spans; no I/O, no NAT, no state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/control_bodies.hpp"

namespace pptp::wire {

inline constexpr std::uint32_t kMagicCookie = 0x1A2B3C4D;   // RFC 2637 section 1.4
inline constexpr std::uint16_t kControlMessageKind = 1;     // "PPTP Message Type" 1: control
inline constexpr std::size_t kControlHeaderLength = 12;     // Length .. Reserved0
inline constexpr std::size_t kMaxControlMessageLength = 220; // Incoming-Call-Request, the longest


// Who may send a message (RFC 2637 section 2.x, "sent by the PAC/PNS").
enum class Sender : std::uint8_t { Pns, Pac, Either };

// One row per message type. Offsets count from the start of the message (0 = field absent).
// The Call ID field always holds the sender's own Call ID, the Peer's Call ID field the
// receiver's: that is what NAT rewriting and GRE matching key on.
struct MessageSpec {
  ControlMessageType type;
  std::string_view name;  // RFC spelling
  std::string_view key;   // short, stable, for logs and JSON
  std::uint16_t length;   // RFC fixed length, header included
  Sender sender;
  bool call_scoped;       // refers to a call rather than to the control connection
  std::uint16_t call_id_offset;
  std::uint16_t peer_call_id_offset;
};

inline constexpr std::array<MessageSpec, 15> kMessageSpecs{{
    {ControlMessageType::StartControlConnectionRequest, "Start-Control-Connection-Request", "SCCRQ", 156, Sender::Either, false, 0, 0},
    {ControlMessageType::StartControlConnectionReply, "Start-Control-Connection-Reply", "SCCRP", 156, Sender::Either, false, 0, 0},
    {ControlMessageType::StopControlConnectionRequest, "Stop-Control-Connection-Request", "StopCCRQ", 16, Sender::Either, false, 0, 0},
    {ControlMessageType::StopControlConnectionReply, "Stop-Control-Connection-Reply", "StopCCRP", 16, Sender::Either, false, 0, 0},
    {ControlMessageType::EchoRequest, "Echo-Request", "ECHORQ", 16, Sender::Either, false, 0, 0},
    {ControlMessageType::EchoReply, "Echo-Reply", "ECHORP", 20, Sender::Either, false, 0, 0},
    {ControlMessageType::OutgoingCallRequest, "Outgoing-Call-Request", "OCRQ", 168, Sender::Pns, true, 12, 0},
    {ControlMessageType::OutgoingCallReply, "Outgoing-Call-Reply", "OCRP", 32, Sender::Pac, true, 12, 14},
    {ControlMessageType::IncomingCallRequest, "Incoming-Call-Request", "ICRQ", 220, Sender::Pac, true, 12, 0},
    {ControlMessageType::IncomingCallReply, "Incoming-Call-Reply", "ICRP", 24, Sender::Pns, true, 12, 14},
    {ControlMessageType::IncomingCallConnected, "Incoming-Call-Connected", "ICCN", 28, Sender::Pac, true, 0, 12},
    {ControlMessageType::CallClearRequest, "Call-Clear-Request", "CCRQ", 16, Sender::Pns, true, 12, 0},
    {ControlMessageType::CallDisconnectNotify, "Call-Disconnect-Notify", "CDN", 148, Sender::Pac, true, 12, 0},
    {ControlMessageType::WanErrorNotify, "WAN-Error-Notify", "WEN", 40, Sender::Pac, true, 0, 12},
    {ControlMessageType::SetLinkInfo, "Set-Link-Info", "SLI", 24, Sender::Pns, true, 0, 12},
}};

// nullptr for a type outside 1..15.
const MessageSpec* find_spec(std::uint16_t type);
const MessageSpec& spec_of(ControlMessageType type);


struct ControlHeader {
  std::uint16_t length = 0;
  std::uint16_t pptp_message_type = kControlMessageKind;
  std::uint32_t magic_cookie = kMagicCookie;
  ControlMessageType type = ControlMessageType::StartControlConnectionRequest;
  std::uint16_t reserved0 = 0;
  bool operator==(const ControlHeader&) const = default;
};

// Things that break a MUST of the RFC but leave the message usable; counted, not fatal.
enum class MessageDefect : std::uint8_t {
  ReservedNonZero = 0,      // a Reserved field is not zero (seen from Windows servers)
  NumberLengthTooLong = 1,  // a Phone/Dialed/Dialing Number Length above 64
};
inline constexpr std::size_t kMessageDefectCount = 2;
std::string_view name_of(MessageDefect d);

struct ControlMessage {
  ControlHeader header;
  ControlMessageBody body;
  std::uint8_t defects = 0;                 // bit per MessageDefect
  std::string_view first_defect_field;      // static field name, for diagnostics

  ControlMessageType type() const { return header.type; }
  const MessageSpec& spec() const { return spec_of(header.type); }
  bool has_defect(MessageDefect d) const { return (defects >> static_cast<unsigned>(d)) & 1U; }
  template <class T>
  const T* as() const {
    return std::get_if<T>(&body);
  }
  // The sender's own Call ID and the receiver's (Peer's) Call ID, where the type has them.
  std::optional<std::uint16_t> call_id() const;
  std::optional<std::uint16_t> peer_call_id() const;
  bool operator==(const ControlMessage& o) const { return header == o.header && body == o.body; }
};

// A message with a correct header for its body (length, type, cookie).
ControlMessage make_control_message(ControlMessageBody body);

enum class ParseErrorCode : std::uint8_t {
  Truncated,           // fewer bytes than the header or the Length field needs
  BadLength,           // Length field differs from the type's fixed length (or is absurd)
  BadPptpMessageType,  // "PPTP Message Type" other than 1 (control)
  BadMagicCookie,      // not 0x1A2B3C4D
  UnknownMessageType,  // Control Message Type outside 1..15
};
std::string_view name_of(ParseErrorCode c);

struct ParseError {
  ParseErrorCode code = ParseErrorCode::Truncated;
  std::uint32_t actual = 0;    // the offending value (or bytes available for Truncated)
  std::uint32_t expected = 0;  // what the RFC wants (or bytes needed)
  bool operator==(const ParseError&) const = default;
};
// "bad magic cookie 0x1a2b3c4e, expected 0x1a2b3c4d" and the like.
std::string describe(const ParseError& e);

// Framing for stream reassembly: how long is the message at the start of `available`?
// Judges the header as soon as enough bytes are there, so a lying Length is caught after
// 10 bytes rather than after waiting for them.
struct Frame {
  enum class Status : std::uint8_t { NeedMore, Complete, Invalid };
  Status status = Status::NeedMore;
  std::size_t length = 0;  // message length when Complete
  ParseError error{};      // when Invalid
};
Frame frame_control_message(Bytes available);

// Parses the message at the start of `data` (exactly header.length bytes are read).
Result<ControlMessage, ParseError> parse_control_message(Bytes data);

// Writes the message as it is (header fields included), so parse then serialize gives
// back the same bytes.
std::vector<std::uint8_t> serialize(const ControlMessage& message);

// Calls visitor for each body field, in wire order (see the field kinds above).
template <class Visitor>
void visit_fields(const ControlMessage& message, Visitor& visitor) {
  std::visit([&](const auto& body) { std::decay_t<decltype(body)>::fields(visitor, body); },
             message.body);
}

}  // namespace pptp::wire
