// Limits (docs/policy.md, "limits"): how many control connections and calls each inside
// source address and each user holds, how many calls each server carries, and a token bucket
// per source for call set-ups, so that a burst of Outgoing-Call-Requests from one host
// cannot exhaust Call IDs for everybody. Counts are keyed by address and by user *name*, so
// they survive a policy reload that renumbers users. Pure bookkeeping: the caller passes the
// time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "policy/policy.hpp"

namespace pptp::policy {

inline constexpr std::size_t kMaxRateBuckets = 65536;  // sources with a set-up rate tracked

// What one admitted connection or call holds, to give back on release.
struct Charge {
  wire::Ipv4Address source;
  std::string user;  // empty: no user identified
  wire::Ipv4Address server;
};

class Admission {
 public:
  // nullopt: admitted and counted; otherwise the limit that refused it ("per_source.calls=8").
  std::optional<std::string> admit_connection(const Policy& p, const Charge& c, std::optional<std::size_t> user);
  void release_connection(const Charge& c);
  std::optional<std::string> admit_call(const Policy& p, const Charge& c, std::optional<std::size_t> user, double now);
  void release_call(const Charge& c);
  // A call's user became known (its PPP authentication name): count it against that user.
  // On refusal the call stays counted as it was.
  std::optional<std::string> move_call(const Policy& p, Charge& c, std::size_t user);

  std::uint32_t source_calls(wire::Ipv4Address a) const;
  std::uint32_t user_calls(const std::string& user) const;
  std::uint32_t server_calls(wire::Ipv4Address a) const;
  std::size_t rate_buckets() const { return buckets_.size(); }
  // Nothing is held: every connection and call has been given back.
  bool empty() const { return sources_.empty() && users_.empty() && servers_.empty(); }

 private:
  struct Count {
    std::uint32_t connections = 0;
    std::uint32_t calls = 0;
  };
  struct Bucket {
    double tokens = 0;
    double updated = 0;
  };
  static void decrement(std::uint32_t& v) { v = v > 0 ? v - 1 : 0; }
  template <class Map>
  static void give_back(Map& map, const typename Map::key_type& key, std::uint32_t Count::*field);
  bool take_token(const SetupRate& r, wire::Ipv4Address source, double now);

  std::unordered_map<std::uint32_t, Count> sources_;
  std::unordered_map<std::string, Count> users_;
  std::unordered_map<std::uint32_t, std::uint32_t> servers_;
  std::unordered_map<std::uint32_t, Bucket> buckets_;
};

}  // namespace pptp::policy
