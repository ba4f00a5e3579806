#include "alg/wire/ppp.hpp"

#include <cstdio>

namespace pptp::wire {

namespace {
constexpr std::size_t kChapMd5ValueSize = 16;
constexpr std::size_t kMsChapValueSize = 49;  // MS-CHAP v1 and v2 responses are both 49 octets

PppError auth_truncated(std::size_t have, std::size_t need) {
  return PppError{PppErrorCode::AuthTruncated, static_cast<std::uint32_t>(have),
                  static_cast<std::uint32_t>(need)};
}

Result<std::optional<AuthIdentity>, PppError> make_identity(AuthMethod method, Bytes name) {
  if (name.size() > kMaxAuthNameLength) {
    return unexpected(PppError{PppErrorCode::AuthNameTooLong, static_cast<std::uint32_t>(name.size()),
                               static_cast<std::uint32_t>(kMaxAuthNameLength)});
  }
  return std::optional<AuthIdentity>(
      AuthIdentity{method, std::string(name.begin(), name.end())});
}

// MS-CHAPv2 Response value (RFC 2759 section 4): Peer-Challenge(16) Reserved(8, zero)
// NT-Response(24) Flags(1). MS-CHAPv1 (RFC 2433): LM(24) NT(24) Use-NT(1); its LM part is
// rarely zero in octets 16..23, so zero there means v2.
AuthMethod chap_method(Bytes value) {
  if (value.size() == kChapMd5ValueSize) return AuthMethod::ChapMd5;
  if (value.size() == kMsChapValueSize) {
    for (std::size_t i = 16; i < 24; ++i) {
      if (value[i] != 0) return AuthMethod::MsChap;
    }
    return AuthMethod::MsChapV2;
  }
  return AuthMethod::Chap;
}
}  // namespace

std::string_view name_of(PppErrorCode c) {
  switch (c) {
    case PppErrorCode::Empty: return "ppp_empty";
    case PppErrorCode::BadProtocol: return "ppp_bad_protocol";
    case PppErrorCode::AuthTruncated: return "ppp_auth_truncated";
    case PppErrorCode::AuthNameTooLong: return "ppp_auth_name_too_long";
  }
  return "unknown";
}

std::string describe(const PppError& e) {
  char buf[128];
  switch (e.code) {
    case PppErrorCode::Empty: std::snprintf(buf, sizeof buf, "empty PPP frame"); break;
    case PppErrorCode::BadProtocol:
      std::snprintf(buf, sizeof buf, "malformed PPP protocol field 0x%04x", e.actual);
      break;
    case PppErrorCode::AuthTruncated:
      std::snprintf(buf, sizeof buf, "PPP authentication packet truncated: %u bytes, Length says %u",
                    e.actual, e.expected);
      break;
    case PppErrorCode::AuthNameTooLong:
      std::snprintf(buf, sizeof buf, "PPP authentication name of %u bytes (limit %u)", e.actual,
                    e.expected);
      break;
  }
  return buf;
}

std::string_view name_of(AuthMethod m) {
  switch (m) {
    case AuthMethod::Pap: return "pap";
    case AuthMethod::ChapMd5: return "chap-md5";
    case AuthMethod::MsChap: return "ms-chap";
    case AuthMethod::MsChapV2: return "ms-chap-v2";
    case AuthMethod::Chap: return "chap";
    case AuthMethod::EapIdentity: return "eap-identity";
  }
  return "unknown";
}

Result<PppFrame, PppError> parse_ppp_frame(Bytes data) {
  if (data.empty()) return unexpected(PppError{});
  PppFrame f;
  std::size_t pos = 0;
  // Address-and-Control-Field-Compression (RFC 1661 6.6) may drop FF 03.
  if (data.size() >= 2 && data[0] == 0xFF && data[1] == 0x03) {
    f.address_control_present = true;
    pos = 2;
  }
  if (pos >= data.size()) return unexpected(PppError{PppErrorCode::Empty, 0, 1});
  if ((data[pos] & 1U) != 0) {
    f.protocol = data[pos];
    f.protocol_compressed = true;
    pos += 1;
  } else {
    if (pos + 2 > data.size()) {
      return unexpected(PppError{PppErrorCode::BadProtocol, data[pos], 0});
    }
    f.protocol = load_u16(data.data() + pos);
    if ((f.protocol & 1U) == 0) return unexpected(PppError{PppErrorCode::BadProtocol, f.protocol, 0});
    pos += 2;
  }
  f.information = data.subspan(pos);
  return f;
}

Result<std::optional<AuthPacket>, PppError> parse_auth_packet(const PppFrame& frame) {
  const Bytes info = frame.information;
  if (frame.protocol != kPppPap && frame.protocol != kPppChap && frame.protocol != kPppEap) {
    return std::optional<AuthPacket>{};
  }
  if (info.size() < 4) return unexpected(auth_truncated(info.size(), 4));
  AuthPacket p{frame.protocol, info[0], info[1], std::nullopt, std::nullopt};
  const std::size_t length = load_u16(info.data() + 2);
  if (length < 4 || length > info.size()) return unexpected(auth_truncated(info.size(), length));
  const Bytes packet = info.first(length);
  Result<std::optional<AuthIdentity>, PppError> identity = std::optional<AuthIdentity>{};

  if (frame.protocol == kPppPap) {
    if (p.code == auth_code::kPapRequest) {
      if (packet.size() < 5) return unexpected(auth_truncated(packet.size(), 5));
      const std::size_t peer_id_length = packet[4];
      // Peer-ID, then Passwd-Length and Password: the Peer-ID and the password length must fit.
      if (5 + peer_id_length + 1 > packet.size()) {
        return unexpected(auth_truncated(packet.size(), 5 + peer_id_length + 1));
      }
      identity = make_identity(AuthMethod::Pap, packet.subspan(5, peer_id_length));
    }
  } else if (frame.protocol == kPppChap) {
    if (p.code == auth_code::kChapResponse) {
      if (packet.size() < 5) return unexpected(auth_truncated(packet.size(), 5));
      const std::size_t value_size = packet[4];
      if (5 + value_size > packet.size()) return unexpected(auth_truncated(packet.size(), 5 + value_size));
      identity = make_identity(chap_method(packet.subspan(5, value_size)), packet.subspan(5 + value_size));
    }
  } else if ((p.code == auth_code::kEapRequest || p.code == auth_code::kEapResponse) && packet.size() >= 5) {
    p.eap_type = packet[4];
    if (p.code == auth_code::kEapResponse && packet[4] == auth_code::kEapTypeIdentity) {
      identity = make_identity(AuthMethod::EapIdentity, packet.subspan(5));
    }
  }
  if (!identity) return unexpected(identity.error());
  p.identity = std::move(*identity);
  return std::optional<AuthPacket>(std::move(p));
}

Result<std::optional<AuthIdentity>, PppError> find_auth_identity(const PppFrame& frame) {
  auto packet = parse_auth_packet(frame);
  if (!packet) return unexpected(packet.error());
  if (!*packet) return std::optional<AuthIdentity>{};
  return std::move((*packet)->identity);
}

std::optional<bool> find_auth_outcome(const PppFrame& frame) {
  // PAP: 2 Ack, 3 Nak (RFC 1334 2.2); CHAP and EAP: 3 Success, 4 Failure (RFC 1994, RFC 3748).
  if (frame.information.empty()) return std::nullopt;
  const std::uint8_t code = frame.information[0];
  if (frame.protocol == kPppPap && (code == 2 || code == 3)) return code == 2;
  if ((frame.protocol == kPppChap || frame.protocol == kPppEap) && (code == 3 || code == 4)) {
    return code == 3;
  }
  return std::nullopt;
}

}  // namespace pptp::wire
