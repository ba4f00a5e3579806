// Internal to sync/: call records and keys on the wire (record.cpp), for message.cpp.
#pragma once

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "sync/message.hpp"
#include "sync/record.hpp"

namespace pptp::sync {

inline constexpr std::size_t kKeyBytes = 14;           // two endpoints and a Call ID
inline constexpr std::size_t kRecordFixedBytes = 35;   // after the key, up to and with the user name's length octet

void write_key(ByteWriter& w, const CallKey& k);
CallKey read_key(ByteReader& r);  // r.failed() tells a short read
void write_record(ByteWriter& w, const CallState& c);
Result<CallState, SyncError> read_record(ByteReader& r);
void write_head(ByteWriter& w, const MessageHead& h);
Result<MessageHead, SyncError> read_head(ByteReader& r);
void write_u64(ByteWriter& w, std::uint64_t v);
std::uint64_t get_u64(ByteReader& r);

}  // namespace pptp::sync
