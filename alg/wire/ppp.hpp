// PPP frames as carried in enhanced GRE (no HDLC flags or FCS: RFC 2637 section 4), and the
// authentication packets that name the user in the clear before encryption starts:
// PAP Authenticate-Request (RFC 1334), CHAP Response (RFC 1994; MS-CHAP RFC 2433, MS-CHAPv2
// RFC 2759) and EAP Response/Identity (RFC 3748).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"

namespace pptp::wire {

inline constexpr std::uint16_t kPppLcp = 0xC021;
inline constexpr std::uint16_t kPppPap = 0xC023;
inline constexpr std::uint16_t kPppChap = 0xC223;
inline constexpr std::uint16_t kPppEap = 0xC227;
inline constexpr std::uint16_t kPppIpcp = 0x8021;
inline constexpr std::uint16_t kPppCcp = 0x80FD;
inline constexpr std::uint16_t kPppCompressed = 0x00FD;  // MPPE/MPPC data
inline constexpr std::uint16_t kPppIpv4 = 0x0021;
inline constexpr std::size_t kMaxAuthNameLength = 255;  // PAP's one-octet length; also our bound

enum class PppErrorCode : std::uint8_t {
  Empty,             // no bytes
  BadProtocol,       // protocol field malformed (RFC 1661 section 2: low bit of last octet set)
  AuthTruncated,     // an authentication packet whose Length lies
  AuthNameTooLong,   // a user name longer than kMaxAuthNameLength
};
std::string_view name_of(PppErrorCode c);

struct PppError {
  PppErrorCode code = PppErrorCode::Empty;
  std::uint32_t actual = 0;
  std::uint32_t expected = 0;
};
std::string describe(const PppError& e);

struct PppFrame {
  std::uint16_t protocol = 0;
  bool address_control_present = false;  // FF 03 at the start
  bool protocol_compressed = false;      // one-octet protocol field (RFC 1661 6.5 PFC)
  Bytes information;
};

Result<PppFrame, PppError> parse_ppp_frame(Bytes data);

enum class AuthMethod : std::uint8_t { Pap, ChapMd5, MsChap, MsChapV2, Chap, EapIdentity };
std::string_view name_of(AuthMethod m);

struct AuthIdentity {
  AuthMethod method = AuthMethod::Pap;
  std::string name;  // raw bytes from the wire; render with printable()
  bool operator==(const AuthIdentity&) const = default;
};

// Codes of the authentication protocols (RFC 1334 2.2, RFC 1994 4, RFC 3748 4).
namespace auth_code {
inline constexpr std::uint8_t kPapRequest = 1;
inline constexpr std::uint8_t kPapAck = 2;
inline constexpr std::uint8_t kPapNak = 3;
inline constexpr std::uint8_t kChapChallenge = 1;
inline constexpr std::uint8_t kChapResponse = 2;
inline constexpr std::uint8_t kChapSuccess = 3;
inline constexpr std::uint8_t kChapFailure = 4;
inline constexpr std::uint8_t kEapRequest = 1;
inline constexpr std::uint8_t kEapResponse = 2;
inline constexpr std::uint8_t kEapSuccess = 3;
inline constexpr std::uint8_t kEapFailure = 4;
inline constexpr std::uint8_t kEapTypeIdentity = 1;  // RFC 3748 5.1
}  // namespace auth_code

// One PAP, CHAP or EAP packet: its Code and Identifier, which tie answers to requests, and
// the user name where the packet carries one.
struct AuthPacket {
  std::uint16_t protocol = 0;  // kPppPap, kPppChap or kPppEap
  std::uint8_t code = 0;
  std::uint8_t identifier = 0;
  std::optional<std::uint8_t> eap_type;  // EAP Request and Response only (RFC 3748 4.1)
  std::optional<AuthIdentity> identity;  // PAP Request, CHAP Response, EAP Response/Identity
};

// nullopt for a frame of any other protocol; an error for an authentication packet whose
// Length lies or whose name is too long.
Result<std::optional<AuthPacket>, PppError> parse_auth_packet(const PppFrame& frame);

// The user name in a PAP Authenticate-Request, a CHAP Response or an EAP Response/Identity;
// nullopt for any other frame; an error for an authentication packet that is malformed.
// Never returns the password or the CHAP value.
Result<std::optional<AuthIdentity>, PppError> find_auth_identity(const PppFrame& frame);

// The authenticator's verdict: true for PAP Authenticate-Ack, CHAP or EAP Success; false for
// Authenticate-Nak or Failure; nullopt for any other frame.
std::optional<bool> find_auth_outcome(const PppFrame& frame);

}  // namespace pptp::wire
