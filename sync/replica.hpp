// A table of call records by key: the calls a node publishes (its snapshot's source) and, on
// the standby, the peer's calls as replicated, with the message heads the peer passed in
// part on their control connections (record.hpp, MessageHead).
#pragma once

#include <map>
#include <tuple>
#include <vector>

#include "sync/record.hpp"

namespace pptp::sync {

class Replica {
 public:
  void put(const CallState& c) { calls_[c.key] = c; }
  // A connection's heads go with its last call.
  bool erase(const CallKey& k) {
    if (calls_.erase(k) == 0) return false;
    if (!has_calls(k.pns, k.pac)) {
      heads_.erase(HeadKey{k.pns, k.pac, 0});
      heads_.erase(HeadKey{k.pns, k.pac, 1});
    }
    return true;
  }
  void clear() {
    calls_.clear();
    heads_.clear();
  }
  const CallState* find(const CallKey& k) const {
    auto it = calls_.find(k);
    return it == calls_.end() ? nullptr : &it->second;
  }
  std::size_t size() const { return calls_.size(); }
  const std::map<CallKey, CallState>& calls() const { return calls_; }
  bool has_calls(const wire::Endpoint& pns, const wire::Endpoint& pac) const {
    auto it = calls_.lower_bound(CallKey{pns, pac, 0});
    return it != calls_.end() && it->first.pns == pns && it->first.pac == pac;
  }

  // Kept only on a connection with a call here (so at most two per connection of the
  // table), and only the latest of a direction (serial arithmetic: datagrams may come out
  // of order), of one message the longest. False: not kept.
  bool put_head(MessageHead h) {
    if (!has_calls(h.pns, h.pac) || h.direction > 1) return false;
    const HeadKey key{h.pns, h.pac, h.direction};
    auto it = heads_.find(key);
    if (it != heads_.end()) {
      const auto newer = static_cast<std::int32_t>(h.sequence - it->second.sequence);
      // Of one message's heads the longer: the shorter came late (its rest would not fit).
      if (newer < 0 || (newer == 0 && h.bytes.size() < it->second.bytes.size())) return false;
    }
    heads_[key] = std::move(h);
    return true;
  }
  const MessageHead* head(const wire::Endpoint& pns, const wire::Endpoint& pac, std::uint8_t direction) const {
    auto it = heads_.find(HeadKey{pns, pac, direction});
    return it == heads_.end() ? nullptr : &it->second;
  }
  std::size_t heads() const { return heads_.size(); }

 private:
  using HeadKey = std::tuple<wire::Endpoint, wire::Endpoint, std::uint8_t>;
  std::map<CallKey, CallState> calls_;
  std::map<HeadKey, MessageHead> heads_;
};

}  // namespace pptp::sync
