// Enhanced GRE (RFC 2637 section 4.1): GRE version 1 carrying PPP, whose Key field holds
// the payload length and the receiver's Call ID. Pure parse/build over byte spans.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"

namespace pptp::wire {

inline constexpr std::uint16_t kGreProtocolPpp = 0x880B;
inline constexpr std::uint8_t kGreVersionEnhanced = 1;
inline constexpr std::size_t kGreBaseHeaderLength = 8;  // flags, protocol, payload length, Call ID
inline constexpr std::uint8_t kIpProtocolGre = 47;

enum class GreErrorCode : std::uint8_t {
  Truncated,           // shorter than its header (or than the payload length it claims)
  NotEnhanced,         // version field is not 1
  NotPpp,              // protocol type is not 0x880B
  KeyMissing,          // K bit clear: no Call ID
  ForbiddenFlag,       // C, R, s, Recur or the flags field set (RFC 2637 4.1: MUST be 0)
};
std::string_view name_of(GreErrorCode c);

struct GreError {
  GreErrorCode code = GreErrorCode::Truncated;
  std::uint32_t actual = 0;
  std::uint32_t expected = 0;
};
std::string describe(const GreError& e);

struct GreHeader {
  std::uint16_t payload_length = 0;
  std::uint16_t call_id = 0;  // the receiver's Call ID
  std::optional<std::uint32_t> sequence;
  std::optional<std::uint32_t> acknowledgment;

  std::size_t header_length() const {
    return kGreBaseHeaderLength + (sequence ? 4 : 0) + (acknowledgment ? 4 : 0);
  }
  bool ack_only() const { return !sequence; }
  bool operator==(const GreHeader&) const = default;
};

struct GrePacket {
  GreHeader header;
  Bytes payload;  // exactly payload_length bytes (a PPP frame), empty for an ack-only packet
  std::size_t trailing = 0;  // bytes after the payload that the length does not cover
};

// Parses the GRE header at the start of `data` (the IP payload).
Result<GrePacket, GreError> parse_gre(Bytes data);

// Appends header and payload; payload_length is taken from payload.size().
void build_gre(const GreHeader& header, Bytes payload, std::vector<std::uint8_t>& out);

// Offset of the Call ID inside a GRE header, for in-place rewriting.
inline constexpr std::size_t kGreCallIdOffset = 6;

}  // namespace pptp::wire
