// A node's own call records in a file (table_file.hpp).
#include "sync/table_file.hpp"

#include "sync/record_codec.hpp"

namespace pptp::sync {

std::vector<std::uint8_t> encode_table(const std::vector<CallState>& calls) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  w.u32(kTableMagic);
  w.u8(kTableVersion);
  w.u32(static_cast<std::uint32_t>(calls.size()));
  for (const CallState& c : calls) write_record(w, c);
  return out;
}

std::uint64_t max_table_bytes() {
  constexpr std::uint64_t kHeaderBytes = 4 + 1 + 4;
  constexpr std::uint64_t kLargestRecord = kKeyBytes + kRecordFixedBytes + 255;  // a user name of 255 octets
  return kHeaderBytes + std::uint64_t{kMaxTableRecords} * kLargestRecord;
}

Result<std::vector<CallState>, SyncError> decode_table(Bytes file) {
  ByteReader r(file);
  const std::uint32_t magic = r.u32();
  const std::uint8_t version = r.u8();
  const std::uint32_t count = r.u32();
  if (r.failed()) return unexpected(SyncError::Truncated);
  if (magic != kTableMagic) return unexpected(SyncError::BadMagic);
  if (version != kTableVersion) return unexpected(SyncError::BadVersion);
  // Every record takes at least its fixed bytes: a count the file cannot hold is refused
  // before anything is reserved for it.
  if (count > kMaxTableRecords || count > r.remaining() / (kKeyBytes + kRecordFixedBytes)) {
    return unexpected(SyncError::Truncated);
  }
  std::vector<CallState> calls;
  calls.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto c = read_record(r);
    if (!c) return unexpected(c.error());
    calls.push_back(std::move(*c));
  }
  if (r.remaining() != 0) return unexpected(SyncError::TrailingBytes);
  return calls;
}

}  // namespace pptp::sync
