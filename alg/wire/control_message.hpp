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

namespace pptp::wire {

inline constexpr std::uint32_t kMagicCookie = 0x1A2B3C4D;   // RFC 2637 section 1.4
inline constexpr std::uint16_t kControlMessageKind = 1;     // "PPTP Message Type" 1: control
inline constexpr std::size_t kControlHeaderLength = 12;     // Length .. Reserved0
inline constexpr std::size_t kMaxControlMessageLength = 220; // Incoming-Call-Request, the longest
inline constexpr std::size_t kTextFieldLength = 64;         // host, vendor, numbers, subaddress
inline constexpr std::size_t kCallStatisticsLength = 128;   // Call-Disconnect-Notify
inline constexpr std::uint16_t kProtocolVersion = 0x0100;   // version 1, revision 0

enum class ControlMessageType : std::uint16_t {
  StartControlConnectionRequest = 1,
  StartControlConnectionReply = 2,
  StopControlConnectionRequest = 3,
  StopControlConnectionReply = 4,
  EchoRequest = 5,
  EchoReply = 6,
  OutgoingCallRequest = 7,
  OutgoingCallReply = 8,
  IncomingCallRequest = 9,
  IncomingCallReply = 10,
  IncomingCallConnected = 11,
  CallClearRequest = 12,
  CallDisconnectNotify = 13,
  WanErrorNotify = 14,
  SetLinkInfo = 15,
};

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

// A fixed-size field kept byte for byte (so that a parsed message serializes to the same bytes);
// text() reads it as the RFC's NUL-padded string.
template <std::size_t N>
struct FixedField {
  std::array<std::uint8_t, N> raw{};

  std::string_view text() const {
    std::size_t n = 0;
    while (n < N && raw[n] != 0) ++n;
    return {reinterpret_cast<const char*>(raw.data()), n};
  }
  static FixedField from_text(std::string_view s) {
    FixedField f;
    for (std::size_t i = 0; i < s.size() && i < N; ++i) f.raw[i] = static_cast<std::uint8_t>(s[i]);
    return f;
  }
  bool operator==(const FixedField&) const = default;
};
using Text64 = FixedField<kTextFieldLength>;
using CallStatistics = FixedField<kCallStatisticsLength>;

// Field descriptions. Each message type lists its fields once, in wire order, through
// fields(visitor, message); parsing, serialization, validation and reports all walk that
// single description. Visitor kinds: u8/u16/u32 values, reserved8/16/32 (must be zero),
// length16 (a string length, at most 64), text (64-byte string), opaque (raw bytes).
#define PPTP_FIELDS template <class V, class Self> static void fields(V& v, Self& m)

struct StartControlConnectionRequest {
  static constexpr ControlMessageType kType = ControlMessageType::StartControlConnectionRequest;
  std::uint16_t protocol_version = kProtocolVersion;
  std::uint16_t reserved1 = 0;
  std::uint32_t framing_capabilities = 0;
  std::uint32_t bearer_capabilities = 0;
  std::uint16_t maximum_channels = 0;
  std::uint16_t firmware_revision = 0;
  Text64 host_name;
  Text64 vendor_string;
  PPTP_FIELDS {
    v.u16("protocol_version", m.protocol_version);
    v.reserved16("reserved1", m.reserved1);
    v.u32("framing_capabilities", m.framing_capabilities);
    v.u32("bearer_capabilities", m.bearer_capabilities);
    v.u16("maximum_channels", m.maximum_channels);
    v.u16("firmware_revision", m.firmware_revision);
    v.text("host_name", m.host_name);
    v.text("vendor_string", m.vendor_string);
  }
  bool operator==(const StartControlConnectionRequest&) const = default;
};

struct StartControlConnectionReply {
  static constexpr ControlMessageType kType = ControlMessageType::StartControlConnectionReply;
  std::uint16_t protocol_version = kProtocolVersion;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint32_t framing_capabilities = 0;
  std::uint32_t bearer_capabilities = 0;
  std::uint16_t maximum_channels = 0;
  std::uint16_t firmware_revision = 0;
  Text64 host_name;
  Text64 vendor_string;
  PPTP_FIELDS {
    v.u16("protocol_version", m.protocol_version);
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.u32("framing_capabilities", m.framing_capabilities);
    v.u32("bearer_capabilities", m.bearer_capabilities);
    v.u16("maximum_channels", m.maximum_channels);
    v.u16("firmware_revision", m.firmware_revision);
    v.text("host_name", m.host_name);
    v.text("vendor_string", m.vendor_string);
  }
  bool operator==(const StartControlConnectionReply&) const = default;
};

struct StopControlConnectionRequest {
  static constexpr ControlMessageType kType = ControlMessageType::StopControlConnectionRequest;
  std::uint8_t reason = 0;
  std::uint8_t reserved1 = 0;
  std::uint16_t reserved2 = 0;
  PPTP_FIELDS {
    v.u8("reason", m.reason);
    v.reserved8("reserved1", m.reserved1);
    v.reserved16("reserved2", m.reserved2);
  }
  bool operator==(const StopControlConnectionRequest&) const = default;
};

struct StopControlConnectionReply {
  static constexpr ControlMessageType kType = ControlMessageType::StopControlConnectionReply;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint16_t reserved1 = 0;
  PPTP_FIELDS {
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.reserved16("reserved1", m.reserved1);
  }
  bool operator==(const StopControlConnectionReply&) const = default;
};

struct EchoRequest {
  static constexpr ControlMessageType kType = ControlMessageType::EchoRequest;
  std::uint32_t identifier = 0;
  PPTP_FIELDS { v.u32("identifier", m.identifier); }
  bool operator==(const EchoRequest&) const = default;
};

struct EchoReply {
  static constexpr ControlMessageType kType = ControlMessageType::EchoReply;
  std::uint32_t identifier = 0;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint16_t reserved1 = 0;
  PPTP_FIELDS {
    v.u32("identifier", m.identifier);
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.reserved16("reserved1", m.reserved1);
  }
  bool operator==(const EchoReply&) const = default;
};

struct OutgoingCallRequest {
  static constexpr ControlMessageType kType = ControlMessageType::OutgoingCallRequest;
  std::uint16_t call_id = 0;
  std::uint16_t call_serial_number = 0;
  std::uint32_t minimum_bps = 0;
  std::uint32_t maximum_bps = 0;
  std::uint32_t bearer_type = 0;
  std::uint32_t framing_type = 0;
  std::uint16_t packet_recv_window_size = 0;
  std::uint16_t packet_processing_delay = 0;
  std::uint16_t phone_number_length = 0;
  std::uint16_t reserved1 = 0;
  Text64 phone_number;
  Text64 subaddress;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.u16("call_serial_number", m.call_serial_number);
    v.u32("minimum_bps", m.minimum_bps);
    v.u32("maximum_bps", m.maximum_bps);
    v.u32("bearer_type", m.bearer_type);
    v.u32("framing_type", m.framing_type);
    v.u16("packet_recv_window_size", m.packet_recv_window_size);
    v.u16("packet_processing_delay", m.packet_processing_delay);
    v.length16("phone_number_length", m.phone_number_length);
    v.reserved16("reserved1", m.reserved1);
    v.text("phone_number", m.phone_number);
    v.text("subaddress", m.subaddress);
  }
  bool operator==(const OutgoingCallRequest&) const = default;
};

struct OutgoingCallReply {
  static constexpr ControlMessageType kType = ControlMessageType::OutgoingCallReply;
  std::uint16_t call_id = 0;
  std::uint16_t peer_call_id = 0;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint16_t cause_code = 0;
  std::uint32_t connect_speed = 0;
  std::uint16_t packet_recv_window_size = 0;
  std::uint16_t packet_processing_delay = 0;
  std::uint32_t physical_channel_id = 0;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.u16("peer_call_id", m.peer_call_id);
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.u16("cause_code", m.cause_code);
    v.u32("connect_speed", m.connect_speed);
    v.u16("packet_recv_window_size", m.packet_recv_window_size);
    v.u16("packet_processing_delay", m.packet_processing_delay);
    v.u32("physical_channel_id", m.physical_channel_id);
  }
  bool operator==(const OutgoingCallReply&) const = default;
};

struct IncomingCallRequest {
  static constexpr ControlMessageType kType = ControlMessageType::IncomingCallRequest;
  std::uint16_t call_id = 0;
  std::uint16_t call_serial_number = 0;
  std::uint32_t call_bearer_type = 0;
  std::uint32_t physical_channel_id = 0;
  std::uint16_t dialed_number_length = 0;
  std::uint16_t dialing_number_length = 0;
  Text64 dialed_number;
  Text64 dialing_number;
  Text64 subaddress;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.u16("call_serial_number", m.call_serial_number);
    v.u32("call_bearer_type", m.call_bearer_type);
    v.u32("physical_channel_id", m.physical_channel_id);
    v.length16("dialed_number_length", m.dialed_number_length);
    v.length16("dialing_number_length", m.dialing_number_length);
    v.text("dialed_number", m.dialed_number);
    v.text("dialing_number", m.dialing_number);
    v.text("subaddress", m.subaddress);
  }
  bool operator==(const IncomingCallRequest&) const = default;
};

struct IncomingCallReply {
  static constexpr ControlMessageType kType = ControlMessageType::IncomingCallReply;
  std::uint16_t call_id = 0;
  std::uint16_t peer_call_id = 0;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint16_t packet_recv_window_size = 0;
  std::uint16_t packet_transmit_delay = 0;
  std::uint16_t reserved1 = 0;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.u16("peer_call_id", m.peer_call_id);
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.u16("packet_recv_window_size", m.packet_recv_window_size);
    v.u16("packet_transmit_delay", m.packet_transmit_delay);
    v.reserved16("reserved1", m.reserved1);
  }
  bool operator==(const IncomingCallReply&) const = default;
};

struct IncomingCallConnected {
  static constexpr ControlMessageType kType = ControlMessageType::IncomingCallConnected;
  std::uint16_t peer_call_id = 0;
  std::uint16_t reserved1 = 0;
  std::uint32_t connect_speed = 0;
  std::uint16_t packet_recv_window_size = 0;
  std::uint16_t packet_transmit_delay = 0;
  std::uint32_t framing_type = 0;
  PPTP_FIELDS {
    v.u16("peer_call_id", m.peer_call_id);
    v.reserved16("reserved1", m.reserved1);
    v.u32("connect_speed", m.connect_speed);
    v.u16("packet_recv_window_size", m.packet_recv_window_size);
    v.u16("packet_transmit_delay", m.packet_transmit_delay);
    v.u32("framing_type", m.framing_type);
  }
  bool operator==(const IncomingCallConnected&) const = default;
};

struct CallClearRequest {
  static constexpr ControlMessageType kType = ControlMessageType::CallClearRequest;
  std::uint16_t call_id = 0;
  std::uint16_t reserved1 = 0;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.reserved16("reserved1", m.reserved1);
  }
  bool operator==(const CallClearRequest&) const = default;
};

struct CallDisconnectNotify {
  static constexpr ControlMessageType kType = ControlMessageType::CallDisconnectNotify;
  std::uint16_t call_id = 0;
  std::uint8_t result_code = 0;
  std::uint8_t error_code = 0;
  std::uint16_t cause_code = 0;
  std::uint16_t reserved1 = 0;
  CallStatistics call_statistics;
  PPTP_FIELDS {
    v.u16("call_id", m.call_id);
    v.u8("result_code", m.result_code);
    v.u8("error_code", m.error_code);
    v.u16("cause_code", m.cause_code);
    v.reserved16("reserved1", m.reserved1);
    v.text("call_statistics", m.call_statistics);
  }
  bool operator==(const CallDisconnectNotify&) const = default;
};

struct WanErrorNotify {
  static constexpr ControlMessageType kType = ControlMessageType::WanErrorNotify;
  std::uint16_t peer_call_id = 0;
  std::uint16_t reserved1 = 0;
  std::uint32_t crc_errors = 0;
  std::uint32_t framing_errors = 0;
  std::uint32_t hardware_overruns = 0;
  std::uint32_t buffer_overruns = 0;
  std::uint32_t timeout_errors = 0;
  std::uint32_t alignment_errors = 0;
  PPTP_FIELDS {
    v.u16("peer_call_id", m.peer_call_id);
    v.reserved16("reserved1", m.reserved1);
    v.u32("crc_errors", m.crc_errors);
    v.u32("framing_errors", m.framing_errors);
    v.u32("hardware_overruns", m.hardware_overruns);
    v.u32("buffer_overruns", m.buffer_overruns);
    v.u32("timeout_errors", m.timeout_errors);
    v.u32("alignment_errors", m.alignment_errors);
  }
  bool operator==(const WanErrorNotify&) const = default;
};

struct SetLinkInfo {
  static constexpr ControlMessageType kType = ControlMessageType::SetLinkInfo;
  std::uint16_t peer_call_id = 0;
  std::uint16_t reserved1 = 0;
  std::uint32_t send_accm = 0xFFFFFFFF;
  std::uint32_t receive_accm = 0xFFFFFFFF;
  PPTP_FIELDS {
    v.u16("peer_call_id", m.peer_call_id);
    v.reserved16("reserved1", m.reserved1);
    v.u32("send_accm", m.send_accm);
    v.u32("receive_accm", m.receive_accm);
  }
  bool operator==(const SetLinkInfo&) const = default;
};

#undef PPTP_FIELDS

// Variant index + 1 == message type: the order matters.
using ControlMessageBody =
    std::variant<StartControlConnectionRequest, StartControlConnectionReply,
                 StopControlConnectionRequest, StopControlConnectionReply, EchoRequest, EchoReply,
                 OutgoingCallRequest, OutgoingCallReply, IncomingCallRequest, IncomingCallReply,
                 IncomingCallConnected, CallClearRequest, CallDisconnectNotify, WanErrorNotify,
                 SetLinkInfo>;

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
