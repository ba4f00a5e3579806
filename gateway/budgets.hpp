// Budgets that hold with or without a policy (docs/reliability.md): one memory budget for
// the daemon's per-connection state, and per source (the host that opened the control
// connection, whichever side of it uses port 1723) how many connections, half-open
// connections and calls it holds, how many out-of-order bytes are buffered for it and how
// many bytes of its segments are held for a half-arrived Call ID field. At a
// budget new work from that source is refused (its SYN dropped, its call set-up refused, its
// out-of-order segment not buffered: TCP sends it again); what is established keeps working,
// and one host cannot take what the others need. Pure bookkeeping: the gateway asks before
// it opens or buffers and tells what each connection holds after each segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "alg/wire/ip.hpp"

namespace pptp::gateway {

inline constexpr std::size_t kMiB = 1024 * 1024;
// Defaults: generous enough for the documented loads (bench/: 10,000 connections of one
// call each, or 60 connections of 1,000 calls, from one client address; docs/performance.md),
// small enough that four hosts cannot take the tracker's 65,536 connections, one host not
// a quarter of the Call IDs toward a server, and a SYN flood not more than ~1.5 MiB.
inline constexpr std::size_t kDefaultMemoryBudgetMiB = 256;         // the whole daemon's tracked state
inline constexpr std::uint32_t kDefaultSourceConnections = 16384;   // live control connections per source
inline constexpr std::uint32_t kDefaultSourceHalfOpen = 1024;       // before Start-Control-Connection-Request
inline constexpr std::uint32_t kDefaultSourceCalls = 16384;         // calls set up per source
inline constexpr std::size_t kDefaultSourceReassemblyKiB = 256;     // out-of-order bytes buffered per source
// Segments held for a Call ID field's second byte (segment_hold.hpp) stay in the kernel
// queue: 64 KiB is at least ~1,600 small segments, so no one host takes all of the 4,096
// held overall (kMaxHeldSegmentsOverall) and with them the queue's room.
inline constexpr std::size_t kDefaultSourceHeldKiB = 64;
// No one host holds more than this part of the memory budget (1/2): a host that floods
// with connections picked up mid-stream fills its half, and the other half stays for every
// other host (found by e2e_flood: at 13,000 such segments in 3 s one host took the whole
// budget and a good client's SYN was refused).
inline constexpr std::size_t kSourceMemoryShareDivisor = 2;

struct BudgetLimits {
  std::size_t memory_bytes = kDefaultMemoryBudgetMiB * kMiB;
  std::uint32_t source_connections = kDefaultSourceConnections;
  std::uint32_t source_half_open = kDefaultSourceHalfOpen;
  std::uint32_t source_calls = kDefaultSourceCalls;
  std::size_t source_reassembly_bytes = kDefaultSourceReassemblyKiB * 1024;
  std::size_t source_held_bytes = kDefaultSourceHeldKiB * 1024;
};

// Which budget refused new work.
enum class BudgetHit : std::uint8_t {
  SourceConnections,
  SourceHalfOpen,
  SourceCalls,
  SourceReassembly,
  Memory,
  SourceHeld,
};
std::string_view name_of(BudgetHit h);

// What one control connection holds now (its estimate in bytes included).
struct BudgetUsage {
  bool live = false;
  bool half_open = false;
  std::size_t reassembly_bytes = 0;
  std::size_t memory_bytes = 0;
  std::size_t held_bytes = 0;  // its segments held for a Call ID field (counted in memory_bytes too)
};

// What a connection's record last charged, to adjust or give back.
struct BudgetShare {
  wire::Ipv4Address source;
  BudgetUsage charged;
};

class Budgets {
 public:
  explicit Budgets(BudgetLimits limits) : limits_(limits) {}

  // A new connection (or a new call, new buffered bytes) from `source`: the budget it would
  // exceed, or nothing. `lingering` is memory held outside the shares (closed entries).
  std::optional<BudgetHit> refuse_connection(wire::Ipv4Address source, std::size_t lingering) const;
  std::optional<BudgetHit> refuse_call(wire::Ipv4Address source, std::size_t call_bytes,
                                       std::size_t lingering) const;
  std::optional<BudgetHit> refuse_buffering(wire::Ipv4Address source, std::size_t bytes,
                                            std::size_t lingering) const;
  std::optional<BudgetHit> refuse_holding(wire::Ipv4Address source, std::size_t bytes, std::size_t lingering) const;

  // Moves the totals from what `share` charged to `now` (BudgetUsage{} gives all back).
  void charge(BudgetShare& share, const BudgetUsage& now);
  void charge_call(wire::Ipv4Address source);
  void release_call(wire::Ipv4Address source);

  const BudgetLimits& limits() const { return limits_; }
  std::size_t memory_bytes() const { return memory_; }
  std::uint32_t source_connections(wire::Ipv4Address source) const;
  std::size_t sources() const { return sources_.size(); }
  // Nothing is held: every share and call has been given back.
  bool empty() const { return sources_.empty() && memory_ == 0; }

 private:
  struct SourceUse {
    std::uint32_t connections = 0;
    std::uint32_t half_open = 0;
    std::uint32_t calls = 0;
    std::size_t reassembly_bytes = 0;
    std::size_t held_bytes = 0;
    std::size_t memory_bytes = 0;  // of the memory budget, this source's share
  };
  std::size_t source_memory_limit() const { return limits_.memory_bytes / kSourceMemoryShareDivisor; }
  bool over_memory(const SourceUse* s, std::size_t more, std::size_t lingering) const;
  const SourceUse* find(wire::Ipv4Address source) const;
  void forget_if_idle(wire::Ipv4Address source);

  BudgetLimits limits_;
  std::unordered_map<std::uint32_t, SourceUse> sources_;  // only sources holding something
  std::size_t memory_ = 0;
};

}  // namespace pptp::gateway
