// The 15 PPTP control message types and bodies (RFC 2637 sections 2.1 to 2.16), each with its field
// list in wire order. Included by control_message.hpp; not used on its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace pptp::wire {

// Constants the bodies need; control_message.hpp has the rest of the header layout.
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

}  // namespace pptp::wire
