#include "alg/track/call_list.hpp"

#include <algorithm>

#include "alg/track/tracker.hpp"

namespace pptp::track {

namespace {
struct KeyLess {
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return key(a) < key(b);
  }
  static std::uint32_t key(std::uint32_t k) { return k; }
  template <class E>
  static std::uint32_t key(const E& e) {
    return e.key;
  }
};
}  // namespace

Call& CallList::add(Owned call) {
  calls_.push_back(std::move(call));
  Call& c = *calls_.back();
  if (c.state == CallState::Closed) ++closing_;
  if (indexed_) {
    if (c.pns_call_id) index(Side::Pns, c, *c.pns_call_id);
    if (c.pac_call_id) index(Side::Pac, c, *c.pac_call_id);
  } else if (calls_.size() >= kCallIndexFrom) {
    build_index();
  }
  return c;
}

void CallList::build_index() {
  indexed_ = true;
  index_.reserve(2 * calls_.size());
  for (const Owned& c : calls_) {
    if (c->pns_call_id) index_.push_back(Entry{key_of(Side::Pns, *c->pns_call_id), c.get()});
    if (c->pac_call_id) index_.push_back(Entry{key_of(Side::Pac, *c->pac_call_id), c.get()});
  }
  // Stable: equal Call IDs stay in opening order.
  std::stable_sort(index_.begin(), index_.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
}

void CallList::name_pns_call_id(Call& call, std::uint16_t id) {
  if (call.pns_call_id) unindex(Side::Pns, call, *call.pns_call_id);
  call.pns_call_id = id;
  index(Side::Pns, call, id);
}

void CallList::name_pac_call_id(Call& call, std::uint16_t id) {
  if (call.pac_call_id) unindex(Side::Pac, call, *call.pac_call_id);
  call.pac_call_id = id;
  index(Side::Pac, call, id);
}

void CallList::close(Call& call) {
  if (call.state != CallState::Closed) ++closing_;
  call.state = CallState::Closed;
}

void CallList::remove(Call& call) {
  const auto it = std::find_if(calls_.begin(), calls_.end(), [&](const Owned& p) { return p.get() == &call; });
  if (it == calls_.end()) return;
  if (call.pns_call_id) unindex(Side::Pns, call, *call.pns_call_id);
  if (call.pac_call_id) unindex(Side::Pac, call, *call.pac_call_id);
  if (call.state == CallState::Closed) --closing_;
  calls_.erase(it);
  if (calls_.empty()) {  // the index's memory goes with the last call; it comes back at kCallIndexFrom
    index_ = {};
    indexed_ = false;
  }
}

void CallList::index(Side side, Call& call, std::uint16_t id) {
  if (!indexed_) return;
  const std::uint32_t key = key_of(side, id);
  // After any entry of the same Call ID: equal entries stay in the order they were named.
  index_.insert(std::upper_bound(index_.begin(), index_.end(), key, KeyLess{}), Entry{key, &call});
}

void CallList::unindex(Side side, const Call& call, std::uint16_t id) {
  if (!indexed_) return;
  const auto [first, last] = std::equal_range(index_.begin(), index_.end(), key_of(side, id), KeyLess{});
  const auto it = std::find_if(first, last, [&](const Entry& e) { return e.call == &call; });
  if (it != last) index_.erase(it);
}

template <class Accept>
Call* CallList::oldest(Side side, std::uint16_t id, Accept&& accept) const {
  if (!indexed_) {  // a short list: the first in opening order is the oldest
    for (const Owned& c : calls_) {
      const std::optional<std::uint16_t>& named = side == Side::Pns ? c->pns_call_id : c->pac_call_id;
      if (named == id && accept(*c)) return c.get();
    }
    return nullptr;
  }
  // Call ids grow as calls open: the smallest is the first in opening order.
  Call* found = nullptr;
  const auto [first, last] = std::equal_range(index_.begin(), index_.end(), key_of(side, id), KeyLess{});
  for (auto it = first; it != last; ++it) {
    if (accept(*it->call) && (found == nullptr || it->call->id < found->id)) found = it->call;
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
