#include "alg/track/call_list.hpp"

#include <algorithm>

#include "alg/track/tracker.hpp"

namespace pptp::track {

namespace {
// Orders calls by one side's Call ID, read from the call (an index holds named calls only).
struct ById {
  bool pns;
  std::uint16_t of(const Call& c) const { return pns ? *c.pns_call_id : *c.pac_call_id; }
  bool operator()(const Call* a, std::uint16_t id) const { return of(*a) < id; }
  bool operator()(std::uint16_t id, const Call* b) const { return id < of(*b); }
};
}  // namespace

// Placed by the PAC, no PNS Call ID yet (its Incoming-Call-Reply names it), not closed.
bool CallList::unanswered(const Call& call) {
  return call.origin == CallOrigin::Incoming && !call.pns_call_id && call.state != CallState::Closed;
}

Call& CallList::add(Owned call) {
  calls_.push_back(std::move(call));
  Call& c = *calls_.back();
  if (c.state == CallState::Closed) ++closing_;
  if (unanswered(c)) ++unanswered_incoming_;
  if (indexed_) {
    if (c.pns_call_id) index(Side::Pns, c);
    if (c.pac_call_id) index(Side::Pac, c);
  } else if (calls_.size() >= kCallIndexFrom) {
    build_index();
  }
  return c;
}

const std::optional<std::uint16_t>& CallList::named(Side side, const Call& call) {
  return side == Side::Pns ? call.pns_call_id : call.pac_call_id;
}

std::pair<CallList::Entries::iterator, CallList::Entries::iterator> CallList::part(Side side) {
  const auto split = index_.begin() + pac_from_;
  return side == Side::Pns ? std::pair{index_.begin(), split} : std::pair{split, index_.end()};
}

std::pair<CallList::Entries::const_iterator, CallList::Entries::const_iterator> CallList::part(Side side) const {
  const auto split = index_.begin() + pac_from_;
  return side == Side::Pns ? std::pair{index_.begin(), split} : std::pair{split, index_.end()};
}

void CallList::build_index() {
  indexed_ = true;
  index_.reserve(2 * calls_.size());
  for (const Side side : {Side::Pns, Side::Pac}) {
    const auto from = static_cast<std::ptrdiff_t>(index_.size());
    for (const Owned& c : calls_) {
      if (named(side, *c)) index_.push_back(c.get());
    }
    if (side == Side::Pns) pac_from_ = static_cast<std::uint32_t>(index_.size());
    // Stable: equal Call IDs stay in opening order.
    const ById key{side == Side::Pns};
    std::stable_sort(index_.begin() + from, index_.end(),
                     [key](const Call* a, const Call* b) { return key.of(*a) < key.of(*b); });
  }
}

void CallList::name_pns_call_id(Call& call, std::uint16_t id) {
  if (unanswered(call)) --unanswered_incoming_;
  if (call.pns_call_id) unindex(Side::Pns, call);
  call.pns_call_id = id;
  index(Side::Pns, call);
}

void CallList::name_pac_call_id(Call& call, std::uint16_t id) {
  if (call.pac_call_id) unindex(Side::Pac, call);
  call.pac_call_id = id;
  index(Side::Pac, call);
}

void CallList::close(Call& call) {
  if (unanswered(call)) --unanswered_incoming_;
  if (call.state != CallState::Closed) ++closing_;
  call.state = CallState::Closed;
}

void CallList::remove(Call& call) {
  const auto it = std::find_if(calls_.begin(), calls_.end(), [&](const Owned& p) { return p.get() == &call; });
  if (it == calls_.end()) return;
  if (call.pns_call_id) unindex(Side::Pns, call);
  if (call.pac_call_id) unindex(Side::Pac, call);
  if (call.state == CallState::Closed) --closing_;
  if (unanswered(call)) --unanswered_incoming_;
  calls_.erase(it);
  if (calls_.empty()) {  // the index's memory goes with the last call; it comes back at kCallIndexFrom
    index_ = {};
    pac_from_ = 0;
    indexed_ = false;
  }
}

void CallList::index(Side side, Call& call) {
  if (!indexed_) return;
  const auto [first, last] = part(side);
  // After any call of the same Call ID: equal entries stay in the order they were named.
  index_.insert(std::upper_bound(first, last, *named(side, call), ById{side == Side::Pns}), &call);
  if (side == Side::Pns) ++pac_from_;
}

void CallList::unindex(Side side, const Call& call) {
  if (!indexed_) return;
  const auto [first, last] = part(side);
  const auto [same, beyond] = std::equal_range(first, last, *named(side, call), ById{side == Side::Pns});
  const auto it = std::find(same, beyond, &call);
  if (it == beyond) return;
  index_.erase(it);
  if (side == Side::Pns) --pac_from_;
}

template <class Accept>
Call* CallList::oldest(Side side, std::uint16_t id, Accept&& accept) const {
  if (!indexed_) {  // a short list: the first in opening order is the oldest
    for (const Owned& c : calls_) {
      if (named(side, *c) == id && accept(*c)) return c.get();
    }
    return nullptr;
  }
  // Call ids grow as calls open: the smallest is the first in opening order.
  Call* found = nullptr;
  const auto [begin, end] = part(side);
  const auto [first, last] = std::equal_range(begin, end, id, ById{side == Side::Pns});
  for (auto it = first; it != last; ++it) {
    if (accept(**it) && (found == nullptr || (*it)->id < found->id)) found = *it;
  }
  return found;
}

Call* CallList::find_by_pns_call_id(std::uint16_t id) const {
  return oldest(Side::Pns, id, [](const Call&) { return true; });
}

Call* CallList::find_by_pns_call_id(std::uint16_t id, CallOrigin origin) const {
  return oldest(Side::Pns, id, [&](const Call& c) { return c.origin == origin; });
}

Call* CallList::find_by_pac_call_id(std::uint16_t id) const {
  return oldest(Side::Pac, id, [](const Call&) { return true; });
}

}  // namespace pptp::track
