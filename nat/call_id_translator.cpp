#include "nat/call_id_translator.hpp"

namespace pptp::nat {

std::string_view name_of(NatError e) {
  switch (e) {
    case NatError::Exhausted: return "call_id_exhausted";
    case NatError::ReservedForOthers: return "call_id_reserved_for_others";
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
  if (find_inside_slot(connection_id, inside_call_id) != 0) return unexpected(NatError::AlreadyMapped);
  unpark(connection_id, inside_call_id);  // the client reused it: its old call is over
  Space& space = spaces_[pair_key(outside.value, server.value)];
  if (!within_share(space, inside)) {
    if (space.count == 0) spaces_.erase(pair_key(outside.value, server.value));
    return unexpected(NatError::ReservedForOthers);
  }
  const std::optional<std::uint16_t> chosen = choose(space, inside_call_id);
  if (!chosen) {
    if (space.count == 0) spaces_.erase(pair_key(outside.value, server.value));
    return unexpected(NatError::Exhausted);
  }
  return insert(space, CallMapping{connection_id, inside, outside, server, inside_call_id, *chosen});
}

std::optional<std::uint16_t> CallIdTranslator::choose(Space& space, std::optional<std::uint16_t> preferred) {
  if (half_) {
    if (preferred && (*preferred & 1u) == *half_ && !space.used.test(*preferred)) return preferred;
    return choose_in_half(space);
  }
  if (preferred && !space.used.test(*preferred)) return preferred;
  if (space.count >= kCallIdSpace) {
    ++counters_.exhausted;
    return std::nullopt;
  }
  // Walk from the cursor so that a freed ID is not handed out again at once (a late GRE
  // packet of the old call would reach the new one).
  std::uint16_t candidate = space.cursor;
  while (space.used.test(candidate)) ++candidate;  // terminates: count < kCallIdSpace
  space.cursor = static_cast<std::uint16_t>(candidate + 1);
  return candidate;
}

Result<std::uint16_t, NatError> CallIdTranslator::reserve(std::uint64_t connection_id, wire::Ipv4Address inside,
                                                         wire::Ipv4Address outside, wire::Ipv4Address server,
                                                         std::uint32_t field_sequence,
                                                         std::optional<std::uint16_t> inside_call_id) {
  if (const auto it = reservations_.find({connection_id, field_sequence}); it != reservations_.end()) {
    return it->second.outside_call_id;
  }
  // A Call ID the connection already maps is a duplicate request; it gets a Call ID of its
  // own all the same (the server must not see one that may collide).
  Space& space = spaces_[pair_key(outside.value, server.value)];
  const bool share = within_share(space, inside);
  const std::optional<std::uint16_t> chosen = share ? choose(space, inside_call_id) : std::nullopt;
  if (!chosen) {
    if (space.count == 0) spaces_.erase(pair_key(outside.value, server.value));
    return unexpected(share ? NatError::Exhausted : NatError::ReservedForOthers);
  }
  space.used.set(*chosen);
  ++space.count;
  count_client(space, inside.value, true);
  reservations_.emplace(std::pair{connection_id, field_sequence}, Reservation{outside, server, *chosen, inside});
  return *chosen;
}

std::optional<std::uint16_t> CallIdTranslator::reserved(std::uint64_t connection_id,
                                                        std::uint32_t field_sequence) const {
  const auto it = reservations_.find({connection_id, field_sequence});
  if (it == reservations_.end()) return std::nullopt;
  return it->second.outside_call_id;
}

Result<const CallMapping*, NatError> CallIdTranslator::confirm(std::uint64_t connection_id,
                                                               std::uint32_t field_sequence,
                                                               wire::Ipv4Address inside,
                                                               std::uint16_t inside_call_id) {
  const auto it = reservations_.find({connection_id, field_sequence});
  if (it == reservations_.end() || find_inside_slot(connection_id, inside_call_id) != 0) {
    if (it != reservations_.end()) unreserve(it);
    return unexpected(NatError::AlreadyMapped);
  }
  const Reservation rv = it->second;
  unreserve(it);
  unpark(connection_id, inside_call_id);  // the client reused it: its old call is over
  Space& space = spaces_[pair_key(rv.outside.value, rv.server.value)];
  return insert(space, CallMapping{connection_id, inside, rv.outside, rv.server, inside_call_id, rv.outside_call_id});
}

CallIdTranslator::Reservations::iterator CallIdTranslator::unreserve(Reservations::iterator it) {
  const Reservation& rv = it->second;
  const std::uint64_t sk = pair_key(rv.outside.value, rv.server.value);
  if (auto s = spaces_.find(sk); s != spaces_.end()) {
    count_client(s->second, rv.inside.value, false);
    s->second.used.reset(rv.outside_call_id);
    if (--s->second.count == 0) spaces_.erase(s);
  }
  return reservations_.erase(it);
}

void CallIdTranslator::give_back(std::uint64_t connection_id, std::uint32_t field_sequence) {
  const auto it = reservations_.find({connection_id, field_sequence});
  if (it != reservations_.end()) unreserve(it);
}

void CallIdTranslator::give_back_before(std::uint64_t connection_id, std::uint32_t sequence) {
  auto it = reservations_.lower_bound({connection_id, 0});
  while (it != reservations_.end() && it->first.first == connection_id) {
    it = static_cast<std::int32_t>(it->first.second - sequence) < 0 ? unreserve(it) : std::next(it);
  }
}

Result<const CallMapping*, NatError> CallIdTranslator::adopt(std::uint64_t connection_id, wire::Ipv4Address inside,
                                                             wire::Ipv4Address outside, wire::Ipv4Address server,
                                                             std::uint16_t inside_call_id,
                                                             std::uint16_t outside_call_id) {
  if (find_inside_slot(connection_id, inside_call_id) != 0) return unexpected(NatError::AlreadyMapped);
  unpark(connection_id, inside_call_id);  // the client reused it: its old call is over
  Space& space = spaces_[pair_key(outside.value, server.value)];
  if (space.used.test(outside_call_id)) return unexpected(NatError::OutsideInUse);
  return insert(space, CallMapping{connection_id, inside, outside, server, inside_call_id, outside_call_id});
}

const CallMapping* CallIdTranslator::insert(Space& space, const CallMapping& mapping) {
  space.used.set(mapping.outside_call_id);
  ++space.count;
  count_client(space, mapping.inside.value, true);
  Slot s = 0;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
    at(s) = mapping;
  } else {
    mappings_.push_back(mapping);
    s = static_cast<Slot>(mappings_.size());
  }
  const CallMapping& m = at(s);
  const auto slot_hash = [this](auto hash) { return [this, hash](Slot x) { return hash(at(x)); }; };
  const auto same = [s](Slot x) { return x == s; };
  by_inside_.assign(inside_hash(m.connection_id, m.inside_call_id), s, same,
                    slot_hash([](const CallMapping& x) { return inside_hash(x.connection_id, x.inside_call_id); }));
  // One entry per key in the other two, as a map's assignment: a later mapping with the same
  // key replaces the earlier one there.
  by_outside_.assign(
      outside_hash(m.server.value, m.outside.value, m.outside_call_id), s,
      [&](Slot x) {
        return at(x).server == m.server && at(x).outside == m.outside && at(x).outside_call_id == m.outside_call_id;
      },
      slot_hash([](const CallMapping& x) { return outside_hash(x.server.value, x.outside.value, x.outside_call_id); }));
  by_connection_outside_.assign(
      connection_outside_hash(m.connection_id, m.outside_call_id), s,
      [&](Slot x) { return at(x).connection_id == m.connection_id && at(x).outside_call_id == m.outside_call_id; },
      slot_hash([](const CallMapping& x) { return connection_outside_hash(x.connection_id, x.outside_call_id); }));
  ++counters_.calls_mapped;
  if (m.translated()) ++counters_.calls_translated;
  return &m;
}

CallIdTranslator::Slot CallIdTranslator::find_inside_slot(std::uint64_t connection_id,
                                                          std::uint16_t inside_call_id) const {
  return by_inside_.find(inside_hash(connection_id, inside_call_id), [&](Slot x) {
    return at(x).connection_id == connection_id && at(x).inside_call_id == inside_call_id;
  });
}

const CallMapping* CallIdTranslator::find_outside(wire::Ipv4Address server, wire::Ipv4Address outside,
                                                  std::uint16_t outside_call_id) const {
  const Slot s = by_outside_.find(outside_hash(server.value, outside.value, outside_call_id), [&](Slot x) {
    const CallMapping& m = at(x);
    return m.server == server && m.outside == outside && m.outside_call_id == outside_call_id;
  });
  return s == 0 ? nullptr : &at(s);
}

const CallMapping* CallIdTranslator::find_inside(std::uint64_t connection_id,
                                                 std::uint16_t inside_call_id) const {
  const Slot s = find_inside_slot(connection_id, inside_call_id);
  return s == 0 ? nullptr : &at(s);
}

const CallMapping* CallIdTranslator::find_outside_on_connection(std::uint64_t connection_id,
                                                                std::uint16_t outside_call_id) const {
  const Slot s = by_connection_outside_.find(connection_outside_hash(connection_id, outside_call_id), [&](Slot x) {
    return at(x).connection_id == connection_id && at(x).outside_call_id == outside_call_id;
  });
  return s == 0 ? nullptr : &at(s);
}

void CallIdTranslator::free_outside(std::uint64_t space_key, std::uint16_t outside_call_id) {
  if (auto sp = spaces_.find(space_key); sp != spaces_.end()) {
    sp->second.used.reset(outside_call_id);
    if (--sp->second.count == 0) spaces_.erase(sp);
  }
}

void CallIdTranslator::erase(Slot s, bool keep_outside) {
  const CallMapping m = at(s);
  if (auto sp = spaces_.find(pair_key(m.outside.value, m.server.value)); sp != spaces_.end()) {
    count_client(sp->second, m.inside.value, false);
  }
  if (!keep_outside) free_outside(pair_key(m.outside.value, m.server.value), m.outside_call_id);
  const auto same = [s](Slot x) { return x == s; };
  by_outside_.erase(outside_hash(m.server.value, m.outside.value, m.outside_call_id), same, [this](Slot x) {
    return outside_hash(at(x).server.value, at(x).outside.value, at(x).outside_call_id);
  });
  by_connection_outside_.erase(connection_outside_hash(m.connection_id, m.outside_call_id), same, [this](Slot x) {
    return connection_outside_hash(at(x).connection_id, at(x).outside_call_id);
  });
  by_inside_.erase(inside_hash(m.connection_id, m.inside_call_id), same,
                   [this](Slot x) { return inside_hash(at(x).connection_id, at(x).inside_call_id); });
  free_.push_back(s);
  ++counters_.released;
}

void CallIdTranslator::release(std::uint64_t connection_id, std::uint16_t inside_call_id) {
  if (const Slot s = find_inside_slot(connection_id, inside_call_id); s != 0) erase(s);
}

bool CallIdTranslator::may_hold(wire::Ipv4Address inside) {
  const auto it = held_by_client_.find(inside.value);
  const bool room = held_.size() < kMaxHeldCallIds &&
                    (it == held_by_client_.end() || it->second < kMaxHeldCallIdsPerClient);
  if (!room) ++counters_.holds_unavailable;
  return room;
}

void CallIdTranslator::release_held(std::uint64_t connection_id, std::uint16_t inside_call_id, double until) {
  const Slot s = find_inside_slot(connection_id, inside_call_id);
  if (s == 0) return;
  const CallMapping& m = at(s);
  std::size_t& of_client = held_by_client_[m.inside.value];
  const bool hold = held_.size() < kMaxHeldCallIds && of_client < kMaxHeldCallIdsPerClient;
  if (hold) {
    held_.push_back(Held{pair_key(m.outside.value, m.server.value), m.outside_call_id, m.inside.value, until});
    ++of_client;
    ++counters_.holds;
  } else if (of_client == 0) {
    held_by_client_.erase(m.inside.value);
  }
  erase(s, hold);
}

void CallIdTranslator::expire_held(double now) {
  // Every hold lasts kHeldCallIdSeconds from its call's end: the oldest ends first.
  while (!held_.empty() && held_.front().until <= now) {
    const Held& h = held_.front();
    free_outside(h.space_key, h.outside_call_id);
    if (const auto it = held_by_client_.find(h.inside); it != held_by_client_.end() && --it->second == 0) {
      held_by_client_.erase(it);
    }
    held_.pop_front();
  }
}

void CallIdTranslator::park(std::uint64_t connection_id, std::uint16_t inside_call_id, double until) {
  const Slot s = find_inside_slot(connection_id, inside_call_id);
  if (s == 0) return;
  // An older parked call of the same Call ID cannot be (mapping it again unparked it); were
  // it there, it goes first, before any count of the client's is held by reference.
  unpark(connection_id, inside_call_id);
  const CallMapping& m = at(s);
  std::size_t& of_client = parked_by_client_[m.inside.value];
  if (of_client >= kMaxParkedCallIdsPerClient) {
    if (may_hold(m.inside)) {
      release_held(connection_id, inside_call_id, until);
    } else {
      erase(s);
    }
    return;
  }
  const std::uint64_t space_key = pair_key(m.outside.value, m.server.value);
  const std::uint32_t inside = m.inside.value;
  parked_.emplace(std::pair{connection_id, inside_call_id}, Parked{space_key, m.outside_call_id, inside});
  ++of_client;
  ++counters_.parks;
  erase(s, true);
  // Still the client's in the server's space (the reserve): it holds the ID.
  if (auto sp = spaces_.find(space_key); sp != spaces_.end()) count_client(sp->second, inside, true);
}

void CallIdTranslator::unpark(std::map<std::pair<std::uint64_t, std::uint16_t>, Parked>::iterator it) {
  if (auto sp = spaces_.find(it->second.space_key); sp != spaces_.end()) count_client(sp->second, it->second.inside, false);
  free_outside(it->second.space_key, it->second.outside_call_id);
  if (const auto c = parked_by_client_.find(it->second.inside); c != parked_by_client_.end() && --c->second == 0) {
    parked_by_client_.erase(c);
  }
  parked_.erase(it);
}

void CallIdTranslator::unpark(std::uint64_t connection_id, std::uint16_t inside_call_id) {
  if (const auto it = parked_.find({connection_id, inside_call_id}); it != parked_.end()) unpark(it);
}

void CallIdTranslator::release_connection(std::uint64_t connection_id) {
  for (auto it = parked_.lower_bound({connection_id, 0});
       it != parked_.end() && it->first.first == connection_id;) {
    unpark(it++);
  }
  auto r = reservations_.lower_bound({connection_id, 0});
  while (r != reservations_.end() && r->first.first == connection_id) r = unreserve(r);
  std::vector<Slot> gone;
  by_inside_.for_each([&](Slot x) {
    if (at(x).connection_id == connection_id) gone.push_back(x);
  });
  for (const Slot s : gone) erase(s);
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

bool CallIdTranslator::within_share(Space& space, wire::Ipv4Address inside) {
  const std::size_t capacity = half_ ? kCallIdSpace / 2 : kCallIdSpace;
  const std::size_t free = space.count < capacity ? capacity - space.count : 0;
  if (reserve_ == 0 || free > reserve_) return true;
  const auto it = space.by_client.find(inside.value);
  if (it == space.by_client.end() || it->second < fair_share_) return true;
  ++counters_.reserve_refused;
  return false;
}

void CallIdTranslator::count_client(Space& space, std::uint32_t inside, bool add) {
  if (add) {
    ++space.by_client[inside];
    return;
  }
  const auto it = space.by_client.find(inside);
  if (it != space.by_client.end() && --it->second == 0) space.by_client.erase(it);
}

std::optional<std::uint16_t> CallIdTranslator::choose_in_half(Space& space) {
  // As choose(), from the cursor, over this node's half only: at most every ID of the half
  // is looked at (the other half may hold adopted calls, so the count alone cannot tell).
  std::uint16_t candidate = static_cast<std::uint16_t>((space.cursor & ~1u) | *half_);
  for (std::size_t tried = 0; tried < kCallIdSpace / 2; ++tried, candidate = static_cast<std::uint16_t>(candidate + 2)) {
    if (space.used.test(candidate)) continue;
    space.cursor = static_cast<std::uint16_t>(candidate + 1);
    return candidate;
  }
  ++counters_.exhausted;
  return std::nullopt;
}

}  // namespace pptp::nat
