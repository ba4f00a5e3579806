// A node's own call records in a file (docs/ha.md, "A restarted active daemon"): what the
// daemon published, kept beside its control socket so that a restarted daemon, which adopts
// its calls from the kernel's elements without their control connections' ports, users and
// verdicts, can publish them again. Pure codec over bytes; the daemon does the I/O.
#pragma once

#include <cstdint>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/core/result.hpp"
#include "sync/message.hpp"
#include "sync/record.hpp"

namespace pptp::sync {

inline constexpr std::uint32_t kTableMagic = 0x50485431;  // "PHT1"
inline constexpr std::uint8_t kTableVersion = 1;
// A bound on what a file may claim, above any table a node holds (the calls' own bound).
inline constexpr std::uint32_t kMaxTableRecords = 1u << 20;

// Magic (4), version (1), record count (4), then the records as on the sync link.
std::vector<std::uint8_t> encode_table(const std::vector<CallState>& calls);
// The largest file decode_table can accept (kMaxTableRecords records of the largest size):
// a reader checks a file's size against it before reading it whole.
std::uint64_t max_table_bytes();
Result<std::vector<CallState>, SyncError> decode_table(Bytes file);

}  // namespace pptp::sync
