#include "nat/call_id_translator.hpp"

namespace pptp::nat {

std::string_view name_of(NatError e) {
  switch (e) {
    case NatError::Exhausted: return "call_id_exhausted";
    case NatError::AlreadyMapped: return "call_already_mapped";
    case NatError::OutsideInUse: return "outside_call_id_in_use";
  }
  return "unknown";
}

Result<const CallMapping*, NatError> CallIdTranslator::map_call(std::uint64_t connection_id,
                                                                wire::Ipv4Address inside,
                                                                wire::Ipv4Address outside,
                                                                wire::Ipv4Address server,
                                                                std::uint16_t inside_call_id) {
  if (by_inside_.contains(call_key(connection_id, inside_call_id))) return unexpected(NatError::AlreadyMapped);
  Space& space = spaces_[pair_key(outside.value, server.value)];
  std::uint16_t chosen = inside_call_id;
  if (space.used.test(chosen)) {
    if (space.count >= kCallIdSpace) {
      ++counters_.exhausted;
      return unexpected(NatError::Exhausted);
    }
    // Walk from the cursor so that a freed ID is not handed out again at once (a late GRE
    // packet of the old call would reach the new one).
    std::uint16_t candidate = space.cursor;
    while (space.used.test(candidate)) ++candidate;  // terminates: count < kCallIdSpace
    chosen = candidate;
    space.cursor = static_cast<std::uint16_t>(candidate + 1);
  }
  return insert(space, CallMapping{connection_id, inside, outside, server, inside_call_id, chosen});
}

Result<const CallMapping*, NatError> CallIdTranslator::adopt(std::uint64_t connection_id, wire::Ipv4Address inside,
                                                             wire::Ipv4Address outside, wire::Ipv4Address server,
                                                             std::uint16_t inside_call_id,
                                                             std::uint16_t outside_call_id) {
  if (by_inside_.contains(call_key(connection_id, inside_call_id))) return unexpected(NatError::AlreadyMapped);
  Space& space = spaces_[pair_key(outside.value, server.value)];
  if (space.used.test(outside_call_id)) return unexpected(NatError::OutsideInUse);
  return insert(space, CallMapping{connection_id, inside, outside, server, inside_call_id, outside_call_id});
}

const CallMapping* CallIdTranslator::insert(Space& space, const CallMapping& mapping) {
  space.used.set(mapping.outside_call_id);
  ++space.count;
  auto owned = std::make_unique<CallMapping>(mapping);
  CallMapping* m = owned.get();
  by_inside_.emplace(call_key(m->connection_id, m->inside_call_id), std::move(owned));
  by_outside_[outside_key(*m)] = m;
  by_connection_outside_[call_key(m->connection_id, m->outside_call_id)] = m;
  ++counters_.calls_mapped;
  if (m->translated()) ++counters_.calls_translated;
  return m;
}

const CallMapping* CallIdTranslator::find_outside(wire::Ipv4Address server, wire::Ipv4Address outside,
                                                  std::uint16_t outside_call_id) const {
  const auto it = by_outside_.find(OutsideKey{server.value, outside.value, outside_call_id});
  return it == by_outside_.end() ? nullptr : it->second;
}

const CallMapping* CallIdTranslator::find_inside(std::uint64_t connection_id,
                                                 std::uint16_t inside_call_id) const {
  const auto it = by_inside_.find(call_key(connection_id, inside_call_id));
  return it == by_inside_.end() ? nullptr : it->second.get();
}

const CallMapping* CallIdTranslator::find_outside_on_connection(std::uint64_t connection_id,
                                                                std::uint16_t outside_call_id) const {
  const auto it = by_connection_outside_.find(call_key(connection_id, outside_call_id));
  return it == by_connection_outside_.end() ? nullptr : it->second;
}

void CallIdTranslator::erase(std::unordered_map<std::uint64_t, std::unique_ptr<CallMapping>>::iterator it) {
  const CallMapping& m = *it->second;
  const std::uint64_t sk = pair_key(m.outside.value, m.server.value);
  if (auto s = spaces_.find(sk); s != spaces_.end()) {
    s->second.used.reset(m.outside_call_id);
    if (--s->second.count == 0) spaces_.erase(s);
  }
  by_outside_.erase(outside_key(m));
  by_connection_outside_.erase(call_key(m.connection_id, m.outside_call_id));
  by_inside_.erase(it);
  ++counters_.released;
}

void CallIdTranslator::release(std::uint64_t connection_id, std::uint16_t inside_call_id) {
  const auto it = by_inside_.find(call_key(connection_id, inside_call_id));
  if (it != by_inside_.end()) erase(it);
}

void CallIdTranslator::release_connection(std::uint64_t connection_id) {
  for (auto it = by_inside_.begin(); it != by_inside_.end();) {
    auto next = std::next(it);
    if (it->second->connection_id == connection_id) erase(it);
    it = next;
  }
}

std::size_t CallIdTranslator::in_use(wire::Ipv4Address outside, wire::Ipv4Address server) const {
  const auto it = spaces_.find(pair_key(outside.value, server.value));
  return it == spaces_.end() ? 0 : it->second.count;
}

bool CallIdTranslator::outside_in_use(wire::Ipv4Address outside, wire::Ipv4Address server,
                                      std::uint16_t outside_call_id) const {
  const auto it = spaces_.find(pair_key(outside.value, server.value));
  return it != spaces_.end() && it->second.used.test(outside_call_id);
}

}  // namespace pptp::nat
