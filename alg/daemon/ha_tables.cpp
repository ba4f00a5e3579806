// The daemon's tables of high availability (ha_node.hpp): the calls taken over, those
// republished, the offloaded calls' keys. Split from ha_node.cpp for size.
#include <algorithm>

#include "alg/daemon/ha_node.hpp"

namespace pptp::daemon {

void TakenOverCalls::take(std::vector<sync::CallState> calls) {
  calls_.clear();
  heads_.clear();
  add(std::move(calls));
}

void TakenOverCalls::add(std::vector<sync::CallState> calls) {
  for (sync::CallState& s : calls) {
    ever_.insert(s.key);
    auto [it, inserted] = calls_.try_emplace(s.key, s);
    // Of two records of one call (ours, adopted at a restart, and the peer's, still published
    // from before) the newer: its positions are the latest.
    if (!inserted && s.updated_ms >= it->second.updated_ms) it->second = std::move(s);
  }
}

std::optional<gateway::TakenOverIds> TakenOverCalls::find(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                          gateway::CallIdSide by, std::uint16_t id) const {
  using Side = gateway::CallIdSide;
  const auto ids = [](const sync::CallState& s) {
    return gateway::TakenOverIds{s.key.pns_call_id, s.pac_call_id, s.outside_call_id};
  };
  if (by == Side::Pns) {
    const auto it = calls_.find(sync::CallKey{pns, pac, id});
    return it != calls_.end() ? std::optional(ids(it->second)) : std::nullopt;
  }
  for (const auto& [key, s] : range_of(calls_, pns, pac)) {
    if ((by == Side::Pac ? s.pac_call_id : s.outside_call_id) == id) return ids(s);
  }
  return std::nullopt;
}

bool TakenOverCalls::holds(const wire::Endpoint& pns, const wire::Endpoint& pac) const {
  return !range_of(calls_, pns, pac).empty();
}

std::optional<track::ResumePositions> TakenOverCalls::positions(const wire::Endpoint& pns,
                                                               const wire::Endpoint& pac) const {
  if (!holds(pns, pac)) return std::nullopt;
  const sync::CallState* latest = nullptr;
  for (const auto& [key, s] : range_of(calls_, pns, pac)) {
    if (s.positions_known && (latest == nullptr || s.updated_ms > latest->updated_ms)) latest = &s;
  }
  track::ResumePositions out;
  if (latest != nullptr) out = {latest->next_sequence[0], latest->next_sequence[1]};
  return out;
}

void TakenOverCalls::keep_heads(const sync::Replica& replica) {
  for (const auto& [key, s] : calls_) {
    for (std::uint8_t d = 0; d < 2; ++d) {
      const sync::MessageHead* h = replica.head(key.pns, key.pac, d);
      if (h != nullptr) heads_.insert_or_assign(HeadKey{key.pns, key.pac, d}, *h);
    }
  }
}

const sync::MessageHead* TakenOverCalls::head(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                              std::uint8_t direction) const {
  const auto it = heads_.find(HeadKey{pns, pac, direction});
  return it == heads_.end() ? nullptr : &it->second;
}

void TakenOverCalls::drop_heads_without_calls() {
  std::erase_if(heads_, [&](const auto& e) { return !holds(std::get<0>(e.first), std::get<1>(e.first)); });
}

std::vector<nat::CallBinding> TakenOverCalls::bindings() const {
  std::vector<nat::CallBinding> out;
  out.reserve(calls_.size());
  for (const auto& [key, s] : calls_) out.push_back(binding_of(s));
  return out;
}

std::vector<sync::CallState> TakenOverCalls::end(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                  const gateway::TakenOverEnd& e) {
  std::vector<sync::CallState> out;
  if (e.pns_call_id) {
    if (auto node = calls_.extract(sync::CallKey{pns, pac, *e.pns_call_id})) out.push_back(std::move(node.mapped()));
  } else {
    const auto all = range_of(calls_, pns, pac);
    for (auto& [key, s] : all) out.push_back(std::move(s));
    calls_.erase(all.begin(), all.end());
  }
  if (!out.empty()) drop_heads_without_calls();
  return out;
}

std::vector<sync::CallState> TakenOverCalls::take_out_if(const std::function<bool(const sync::CallState&)>& selected) {
  std::vector<sync::CallState> out;
  std::erase_if(calls_, [&](auto& entry) {
    if (!selected(entry.second)) return false;
    out.push_back(std::move(entry.second));
    return true;
  });
  if (!out.empty()) drop_heads_without_calls();
  return out;
}

std::size_t TakenOverCalls::retire(const std::vector<nat::CallBinding>& offloaded) {
  if (calls_.empty()) return 0;
  const OffloadedKeys live(offloaded);
  const std::size_t retired =
      std::erase_if(calls_, [&](const auto& entry) { return !live.contains(binding_of(entry.second)); });
  if (retired > 0) drop_heads_without_calls();
  return retired;
}

void Republished::publish(sync::ChannelEnd& channel, const std::vector<sync::CallState>& calls) {
  for (const sync::CallState& s : calls) {
    if (channel.published().find(s.key) == nullptr) {
      channel.publish_add(s);
    } else {
      channel.publish_update(s);
    }
    calls_[s.key] = Entry{binding_of(s), std::nullopt, 0};  // carried here (again)
  }
}

std::vector<nat::CallBinding> Republished::hand_over(std::uint32_t epoch, double now) {
  std::vector<nat::CallBinding> out;
  for (auto& [key, e] : calls_) {
    if (e.handed_over_at) continue;
    e.handed_over_at = now;
    e.epoch = epoch;
    out.push_back(e.binding);
  }
  return out;
}

OffloadedKeys::OffloadedKeys(const std::vector<nat::CallBinding>& offloaded) {
  keys_.reserve(offloaded.size());
  for (const nat::CallBinding& b : offloaded) keys_.push_back(key_of(b));
  std::ranges::sort(keys_);
}

bool OffloadedKeys::contains(const nat::CallBinding& b) const { return std::ranges::binary_search(keys_, key_of(b)); }

std::size_t Republished::retire(sync::ChannelEnd& channel, const std::vector<nat::CallBinding>& offloaded,
                                double now, double hold) {
  // One sorted vector of keys and a binary search per republished call (every tick, with
  // 10,000 calls offloaded), not a search of the offloaded calls per call.
  const OffloadedKeys live(offloaded);
  const bool peer_active = channel.peer_active();
  return std::erase_if(calls_, [&](const auto& entry) {
    const Entry& e = entry.second;
    if (e.handed_over_at) {
      // Not judged by our elements (removed at the demotion): the peer's promotion since
      // (its epoch above the highest then) took them; without it, they stay `hold` seconds.
      const bool taken = peer_active && channel.peer_epoch() > e.epoch;
      if (!taken && now - *e.handed_over_at < hold) return false;
    } else if (live.contains(e.binding)) {
      return false;
    }
    if (channel.published().find(entry.first) != nullptr) channel.publish_delete(entry.first);
    return true;
  });
}

}  // namespace pptp::daemon
