// The sync channel's messages (docs/ha.md, "Message format"): a header naming the sender
// (node, epoch, incarnation), a sequence number and a cumulative acknowledgement, one body,
// and an HMAC-SHA256 over everything before it with the pair's shared key.
//
// decode() is a pure function over a byte span: it never throws, never reads past the span,
// and refuses a message whose tag does not match before looking at its body.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "sync/record.hpp"

namespace pptp::sync {

inline constexpr std::uint32_t kMagic = 0x50484131;  // "PHA1"
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 38;
inline constexpr std::size_t kTagBytes = 32;          // HMAC-SHA256
inline constexpr std::size_t kMinKeyBytes = 16;       // a shorter shared key is refused
// One datagram on the sync link stays below a 1500-byte MTU with IPv4 and UDP headers.
inline constexpr std::size_t kMaxDatagram = 1400;
inline constexpr std::uint8_t kMaxNode = 1;           // a pair: nodes 0 and 1

enum class MessageType : std::uint8_t {
  Hello = 1,     // unsequenced: I am here; want_snapshot asks for the whole table
  Ack = 2,       // unsequenced: only the header's acknowledgement
  Add = 3,       // a call was set up
  Update = 4,    // a call's state changed
  Delete = 5,    // a call ended
  Snapshot = 6,  // one part of the whole table
  Head = 7,      // unsequenced, best effort: a message head passed in part (record.hpp)
};

struct Header {
  std::uint8_t node = 0;
  std::uint32_t epoch = 0;        // a promotion increments it
  std::uint64_t incarnation = 0;  // the sender's start time (ns): a restart shows a larger one
  std::uint64_t sequence = 0;     // 0: unsequenced (Ack, Head); a Hello's own number since s23
  std::uint64_t ack = 0;          // the peer's sequence numbers received in order, up to this
  bool operator==(const Header&) const = default;
};

struct Hello {
  bool want_snapshot = false;
  // The sender's role (flag bit 2); an older build never sets it, so it reads as standby
  // (the healing watch then never fires for it: docs/ha.md).
  bool active = false;
  bool operator==(const Hello&) const = default;
};
struct Ack {
  bool operator==(const Ack&) const = default;
};
struct AddCall {
  CallState call;
  bool operator==(const AddCall&) const = default;
};
struct UpdateCall {
  CallState call;
  bool operator==(const UpdateCall&) const = default;
};
struct DeleteCall {
  CallKey key;
  bool operator==(const DeleteCall&) const = default;
};
struct SnapshotPart {
  std::uint32_t snapshot_id = 0;
  bool first = false;  // the receiver starts a new table
  bool last = false;   // the table is whole: the receiver is in sync
  std::vector<CallState> calls;
  bool operator==(const SnapshotPart&) const = default;
};
using Body = std::variant<Hello, Ack, AddCall, UpdateCall, DeleteCall, SnapshotPart, MessageHead>;
MessageType type_of(const Body& b);

struct Message {
  Header header;
  Body body;
  bool operator==(const Message&) const = default;
};

enum class SyncError : std::uint8_t {
  Truncated,        // shorter than its header, body and tag say
  BadMagic,
  BadVersion,
  BadAuth,          // the tag does not match: wrong key or tampered
  UnknownType,
  UnknownNode,
  ReservedNonZero,
  BadRecord,        // a verdict, flag or length out of range
  TrailingBytes,    // the body is longer than what it holds
  BadKey,           // a key shorter than kMinKeyBytes
};
std::string_view name_of(SyncError e);

// The pair's shared secret (at least kMinKeyBytes).
using Key = std::span<const std::uint8_t>;

// Appends the whole datagram (header, body, tag) to `out`. The caller keeps a body within
// kMaxDatagram (snapshot_parts() does).
Result<std::size_t, SyncError> encode(const Message& m, Key key, std::vector<std::uint8_t>& out);
Result<Message, SyncError> decode(Bytes datagram, Key key);
// The body alone, after the tag was checked (and for the fuzzer, which cannot forge tags).
Result<Body, SyncError> decode_body(MessageType type, Bytes body);
void encode_body(const Body& b, std::vector<std::uint8_t>& out);

// The encoded size of one call record (snapshot parts are filled up to kMaxDatagram).
std::size_t record_bytes(const CallState& c);
inline constexpr std::size_t kSnapshotPartOverhead = kHeaderBytes + kTagBytes + 7;

}  // namespace pptp::sync
