#include "gateway/budgets.hpp"

namespace pptp::gateway {

std::string_view name_of(BudgetHit h) {
  switch (h) {
    case BudgetHit::SourceConnections: return "source_connections";
    case BudgetHit::SourceHalfOpen: return "source_half_open";
    case BudgetHit::SourceCalls: return "source_calls";
    case BudgetHit::SourceReassembly: return "source_reassembly";
    case BudgetHit::Memory: return "memory";
    case BudgetHit::SourceHeld: return "source_held";
  }
  return "unknown";
}

const Budgets::SourceUse* Budgets::find(wire::Ipv4Address source) const {
  const auto it = sources_.find(source.value);
  return it != sources_.end() ? &it->second : nullptr;
}

std::uint32_t Budgets::source_connections(wire::Ipv4Address source) const {
  const SourceUse* s = find(source);
  return s != nullptr ? s->connections : 0;
}

// The whole budget, or this source's share of it.
bool Budgets::over_memory(const SourceUse* s, std::size_t more, std::size_t lingering) const {
  if (memory_ + lingering + more > limits_.memory_bytes) return true;
  return s != nullptr && s->memory_bytes + more > source_memory_limit();
}

std::optional<BudgetHit> Budgets::refuse_connection(wire::Ipv4Address source, std::size_t lingering) const {
  const SourceUse* s = find(source);  // once: this runs for every SYN
  if (s != nullptr && s->connections >= limits_.source_connections) return BudgetHit::SourceConnections;
  if (s != nullptr && s->half_open >= limits_.source_half_open) return BudgetHit::SourceHalfOpen;
  if (memory_ + lingering >= limits_.memory_bytes) return BudgetHit::Memory;
  if (s != nullptr && s->memory_bytes >= source_memory_limit()) return BudgetHit::Memory;
  return std::nullopt;
}

std::optional<BudgetHit> Budgets::refuse_call(wire::Ipv4Address source, std::size_t call_bytes,
                                              std::size_t lingering) const {
  const SourceUse* s = find(source);
  if (s != nullptr && s->calls >= limits_.source_calls) return BudgetHit::SourceCalls;
  if (over_memory(s, call_bytes, lingering)) return BudgetHit::Memory;
  return std::nullopt;
}

std::optional<BudgetHit> Budgets::refuse_buffering(wire::Ipv4Address source, std::size_t bytes,
                                                   std::size_t lingering) const {
  const SourceUse* s = find(source);
  if ((s != nullptr ? s->reassembly_bytes : 0) + bytes > limits_.source_reassembly_bytes) {
    return BudgetHit::SourceReassembly;
  }
  if (over_memory(s, bytes, lingering)) return BudgetHit::Memory;
  return std::nullopt;
}

std::optional<BudgetHit> Budgets::refuse_holding(wire::Ipv4Address source, std::size_t bytes,
                                                 std::size_t lingering) const {
  const SourceUse* s = find(source);
  if ((s != nullptr ? s->held_bytes : 0) + bytes > limits_.source_held_bytes) return BudgetHit::SourceHeld;
  if (over_memory(s, bytes, lingering)) return BudgetHit::Memory;
  return std::nullopt;
}

void Budgets::charge(BudgetShare& share, const BudgetUsage& now) {
  const BudgetUsage& was = share.charged;
  memory_ = memory_ - was.memory_bytes + now.memory_bytes;
  const auto holding = [](const BudgetUsage& u) {
    return u.live || u.half_open || u.reassembly_bytes > 0 || u.held_bytes > 0 || u.memory_bytes > 0;
  };
  const bool holds = holding(now), held = holding(was);
  if (holds || held) {
    SourceUse& s = sources_[share.source.value];
    s.connections = s.connections - (was.live ? 1 : 0) + (now.live ? 1 : 0);
    s.half_open = s.half_open - (was.half_open ? 1 : 0) + (now.half_open ? 1 : 0);
    s.reassembly_bytes = s.reassembly_bytes - was.reassembly_bytes + now.reassembly_bytes;
    s.held_bytes = s.held_bytes - was.held_bytes + now.held_bytes;
    s.memory_bytes = s.memory_bytes - was.memory_bytes + now.memory_bytes;
    share.charged = now;
    forget_if_idle(share.source);
    return;
  }
  share.charged = now;
}

void Budgets::charge_call(wire::Ipv4Address source) { ++sources_[source.value].calls; }

void Budgets::release_call(wire::Ipv4Address source) {
  const auto it = sources_.find(source.value);
  if (it == sources_.end() || it->second.calls == 0) return;
  --it->second.calls;
  forget_if_idle(source);
}

void Budgets::forget_if_idle(wire::Ipv4Address source) {
  const auto it = sources_.find(source.value);
  if (it == sources_.end()) return;
  const SourceUse& s = it->second;
  if (s.connections == 0 && s.half_open == 0 && s.calls == 0 && s.reassembly_bytes == 0 && s.held_bytes == 0 &&
      s.memory_bytes == 0) {
    sources_.erase(it);
  }
}

}  // namespace pptp::gateway
