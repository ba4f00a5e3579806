// A table of call records by key: the calls a node publishes (its snapshot's source) and, on
// the standby, the peer's calls as replicated.
#pragma once

#include <map>
#include <vector>

#include "sync/record.hpp"

namespace pptp::sync {

class Replica {
 public:
  void put(const CallState& c) { calls_[c.key] = c; }
  bool erase(const CallKey& k) { return calls_.erase(k) != 0; }
  void clear() { calls_.clear(); }
  const CallState* find(const CallKey& k) const {
    auto it = calls_.find(k);
    return it == calls_.end() ? nullptr : &it->second;
  }
  std::size_t size() const { return calls_.size(); }
  const std::map<CallKey, CallState>& calls() const { return calls_; }

 private:
  std::map<CallKey, CallState> calls_;
};

}  // namespace pptp::sync
