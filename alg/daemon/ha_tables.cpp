// The daemon's tables of high availability (ha_node.hpp): the calls taken over, those
// republished, the offloaded calls' keys. Split from ha_node.cpp for size.
#include <algorithm>

#include "alg/daemon/ha_node.hpp"

namespace pptp::daemon {

void TakenOverCalls::take(std::vector<sync::CallState> calls) {
  calls_.clear();
  add(std::move(calls));
}

void TakenOverCalls::add(std::vector<sync::CallState> calls) {
  for (sync::CallState& s : calls) calls_.insert_or_assign(s.key, std::move(s));
}

std::optional<std::uint16_t> TakenOverCalls::outside_call_id(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                             std::uint16_t pns_call_id) const {
  const auto it = calls_.find(sync::CallKey{pns, pac, pns_call_id});
  if (it == calls_.end()) return std::nullopt;
  return it->second.outside_call_id;
}

bool TakenOverCalls::holds(const wire::Endpoint& pns, const wire::Endpoint& pac) const {
  const auto it = calls_.lower_bound(sync::CallKey{pns, pac, 0});
  return it != calls_.end() && it->first.pns == pns && it->first.pac == pac;
}

std::optional<track::ResumePositions> TakenOverCalls::positions(const wire::Endpoint& pns,
                                                               const wire::Endpoint& pac) const {
  if (!holds(pns, pac)) return std::nullopt;
  const sync::CallState* latest = nullptr;
  for (auto it = calls_.lower_bound(sync::CallKey{pns, pac, 0});
       it != calls_.end() && it->first.pns == pns && it->first.pac == pac; ++it) {
    if (it->second.positions_known && (latest == nullptr || it->second.updated_ms > latest->updated_ms)) {
      latest = &it->second;
    }
  }
  track::ResumePositions out;
  if (latest != nullptr) out = {latest->next_sequence[0], latest->next_sequence[1]};
  return out;
}

std::vector<nat::CallBinding> TakenOverCalls::bindings() const {
  std::vector<nat::CallBinding> out;
  out.reserve(calls_.size());
  for (const auto& [key, s] : calls_) out.push_back(binding_of(s));
  return out;
}

std::vector<sync::CallState> TakenOverCalls::end(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                  const gateway::TakenOverEnd& e) {
  using Kind = gateway::TakenOverEnd::Kind;
  // The connection's calls are one range of the map (keyed by PNS, PAC, then Call ID).
  const auto first = calls_.lower_bound(sync::CallKey{pns, pac, 0});
  auto last = first;
  while (last != calls_.end() && last->first.pns == pns && last->first.pac == pac) ++last;
  const auto named = [&](const sync::CallState& s) {
    switch (e.kind) {
      case Kind::CallClear: return s.key.pns_call_id == e.call_id;
      case Kind::CallDisconnect: return s.pac_call_id == e.call_id;
      case Kind::Connection: return true;
    }
    return false;
  };
  std::vector<sync::CallState> out;
  for (auto it = first; it != last;) {
    if (named(it->second)) {
      out.push_back(std::move(it->second));
      it = calls_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Republished::publish(sync::ChannelEnd& channel, const std::vector<sync::CallState>& calls) {
  for (const sync::CallState& s : calls) {
    if (channel.published().find(s.key) == nullptr) {
      channel.publish_add(s);
    } else {
      channel.publish_update(s);
    }
    calls_[s.key] = binding_of(s);
  }
}

OffloadedKeys::OffloadedKeys(const std::vector<nat::CallBinding>& offloaded) {
  keys_.reserve(offloaded.size());
  for (const nat::CallBinding& b : offloaded) keys_.push_back(key_of(b));
  std::ranges::sort(keys_);
}

bool OffloadedKeys::contains(const nat::CallBinding& b) const { return std::ranges::binary_search(keys_, key_of(b)); }

std::size_t Republished::retire(sync::ChannelEnd& channel, const std::vector<nat::CallBinding>& offloaded) {
  // One sorted vector of keys and a binary search per republished call (every tick, with
  // 10,000 calls offloaded), not a search of the offloaded calls per call.
  const OffloadedKeys live(offloaded);
  return std::erase_if(calls_, [&](const auto& entry) {
    if (live.contains(entry.second)) return false;
    if (channel.published().find(entry.first) != nullptr) channel.publish_delete(entry.first);
    return true;
  });
}

}  // namespace pptp::daemon
