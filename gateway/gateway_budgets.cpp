// The gateway's side of the budgets (budgets.hpp): what each connection holds, refusals
// counted and logged per source, and records that go with their connection.
#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"

namespace pptp::gateway {

namespace {

// What a connection holds now. A closed one holds only its record (kept for its patches);
// the tracker's closed entry is counted apart (lingering_bytes).
BudgetUsage usage_of(const track::ControlConnection& c) {
  if (c.state == track::ConnectionState::Closed) return BudgetUsage{false, false, 0, kLingeringRecordBytes};
  BudgetUsage u;
  u.live = true;
  u.half_open = c.half_open();
  for (const auto& s : c.streams) u.reassembly_bytes += s.buffered_bytes();
  // A call being closed is still listed while its hooks run; the list counts the others, so
  // settling after every segment costs the same at 1 call or 1,000 (issue 17).
  u.memory_bytes = kConnectionBytes + c.calls.open_count() * kCallBytes + u.reassembly_bytes;
  return u;
}

std::uint64_t GatewayCounters::*counter_of(BudgetHit hit) {
  switch (hit) {
    case BudgetHit::SourceConnections: return &GatewayCounters::budget_connections_refused;
    case BudgetHit::SourceHalfOpen: return &GatewayCounters::budget_half_open_refused;
    case BudgetHit::SourceCalls: return &GatewayCounters::budget_calls_refused;
    case BudgetHit::SourceReassembly: return &GatewayCounters::budget_reassembly_refused;
    case BudgetHit::Memory: return &GatewayCounters::budget_memory_refused;
    case BudgetHit::SourceHeld: return &GatewayCounters::budget_held_refused;
  }
  return &GatewayCounters::budget_memory_refused;
}

}  // namespace

void Gateway::note_refusal(BudgetHit hit, wire::Ipv4Address source, std::string_view work) {
  ++(counters_.*counter_of(hit));
  warnings_.warn_source("budget_refused", source, packet_.time, [&] {
    const BudgetLimits& l = budgets_.limits();
    std::size_t limit = l.memory_bytes;
    switch (hit) {
      case BudgetHit::SourceConnections: limit = l.source_connections; break;
      case BudgetHit::SourceHalfOpen: limit = l.source_half_open; break;
      case BudgetHit::SourceCalls: limit = l.source_calls; break;
      case BudgetHit::SourceReassembly: limit = l.source_reassembly_bytes; break;
      case BudgetHit::SourceHeld: limit = l.source_held_bytes; break;
      case BudgetHit::Memory: break;
    }
    return fmt::format("budget={} limit={} refused={} memory_bytes={}", name_of(hit), limit, work, memory_bytes());
  });
}

void Gateway::settle(ConnectionRecord& r, const track::ControlConnection& c) {
  BudgetUsage u = usage_of(c);
  u.held_bytes = r.held[0].bytes() + r.held[1].bytes();
  u.memory_bytes += u.held_bytes;
  budgets_.charge(r.budget, u);
}

std::size_t Gateway::lingering_bytes() const { return tracker_.closed_connection_count() * kClosedConnectionBytes; }

void Gateway::forget_record(std::uint64_t connection_id) {
  const auto it = connections_.find(connection_id);
  if (it == connections_.end()) return;
  budgets_.charge(it->second.budget, BudgetUsage{});
  connections_.erase(it);
}

void Gateway::on_connection_closed(const track::ControlConnection& c) {
  // One line per connection, but a host opens connections as fast as it likes: the line has
  // a budget per source (docs/reliability.md, "Floods").
  warnings_.limit_source("connection_closed", c.opener, packet_.time, [&] {
    log_->info("connection_closed {} reason=\"{}\"", describe(c), c.close_reason);
  });
  translator_.release_connection(c.id);
  if (call_observer_ != nullptr) end_taken_over(c);
  const auto it = connections_.find(c.id);
  if (it == connections_.end()) return;
  ConnectionRecord& r = it->second;
  for (const ParkedPacCallId& p : r.parked_pac_call_ids) pac_call_ids_.release(p.key, p.call_id);
  r.parked_pac_call_ids.clear();
  r.closed_at = c.closed_at;
  // Held segments wait for a field that will never be decided now (docs/packet-path.md).
  for (SegmentHold& h : r.held) h.drop(held_overall_, counters_, released_);
  if (r.charge) gate_.release_connection(*r.charge);
  r.charge.reset();
  // Records die with their connection; only one whose Call IDs were rewritten stays, for
  // the late retransmissions its patches fix, and only the newest kMaxLingeringRecords.
  // A stream that lost sync keeps its record too: its data stays dropped both ways (desynced).
  const bool patched = r.patches[0].size() + r.patches[1].size() > 0;
  const bool lost_sync = c.streams[0].state() == stream::StreamState::LostSync ||
                         c.streams[1].state() == stream::StreamState::LostSync;
  if (!patched && !lost_sync && r.held[0].empty() && r.held[1].empty()) {
    forget_record(c.id);
    return;
  }
  settle(r, c);
  lingering_.push_back(c.id);
  while (lingering_.size() > kMaxLingeringRecords) {
    const auto old = connections_.find(lingering_.front());
    lingering_.pop_front();
    if (old != connections_.end() && old->second.closed_at && old->second.held[0].empty() &&
        old->second.held[1].empty()) {
      forget_record(old->first);
    }
  }
}

}  // namespace pptp::gateway
