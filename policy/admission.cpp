#include "policy/admission.hpp"

#include <algorithm>

namespace pptp::policy {

namespace {
bool over(const std::optional<std::uint32_t>& limit, std::uint32_t held) { return limit && held >= *limit; }
std::string hit(const char* what, std::uint32_t limit) { return std::string(what) + "=" + std::to_string(limit); }
}  // namespace

std::optional<std::string> Admission::admit_connection(const Policy& p, const Charge& c,
                                                       std::optional<std::size_t> user) {
  const auto s = sources_.find(c.source.value);
  if (over(p.per_source.control_connections, s != sources_.end() ? s->second.connections : 0)) {
    return hit("per_source.control_connections", *p.per_source.control_connections);
  }
  if (!c.user.empty() && user) {
    const Limits l = p.limits_of(*user);
    const auto u = users_.find(c.user);
    if (over(l.control_connections, u != users_.end() ? u->second.connections : 0)) {
      return hit("per_user.control_connections", *l.control_connections);
    }
  }
  ++sources_[c.source.value].connections;
  if (!c.user.empty()) ++users_[c.user].connections;
  return std::nullopt;
}

// Takes one from a count and forgets the key once it holds nothing.
template <class Map>
void Admission::give_back(Map& map, const typename Map::key_type& key, std::uint32_t Count::*field) {
  const auto it = map.find(key);
  if (it == map.end()) return;
  decrement(it->second.*field);
  if (it->second.connections == 0 && it->second.calls == 0) map.erase(it);
}

void Admission::release_connection(const Charge& c) {
  give_back(sources_, c.source.value, &Count::connections);
  if (!c.user.empty()) give_back(users_, c.user, &Count::connections);
}

std::optional<std::string> Admission::admit_call(const Policy& p, const Charge& c, std::optional<std::size_t> user,
                                                 double now) {
  if (over(p.per_source.calls, source_calls(c.source))) return hit("per_source.calls", *p.per_source.calls);
  if (!c.user.empty() && user) {
    const Limits l = p.limits_of(*user);
    if (over(l.calls, user_calls(c.user))) return hit("per_user.calls", *l.calls);
  }
  if (over(p.per_server_calls, server_calls(c.server))) return hit("per_server.calls", *p.per_server_calls);
  if (p.setup_rate && !take_token(*p.setup_rate, c.source, now)) {
    return "per_source.setup_rate=" + std::to_string(p.setup_rate->per_second) + "/s burst " +
           std::to_string(p.setup_rate->burst);
  }
  ++sources_[c.source.value].calls;
  if (!c.user.empty()) ++users_[c.user].calls;
  ++servers_[c.server.value];
  return std::nullopt;
}

void Admission::release_call(const Charge& c) {
  give_back(sources_, c.source.value, &Count::calls);
  if (!c.user.empty()) give_back(users_, c.user, &Count::calls);
  if (auto v = servers_.find(c.server.value); v != servers_.end()) {
    decrement(v->second);
    if (v->second == 0) servers_.erase(v);
  }
}

std::optional<std::string> Admission::move_call(const Policy& p, Charge& c, std::size_t user) {
  const std::string& name = p.users[user].name;
  if (name == c.user) return std::nullopt;
  const Limits l = p.limits_of(user);
  if (over(l.calls, user_calls(name))) return hit("per_user.calls", *l.calls);
  if (!c.user.empty()) give_back(users_, c.user, &Count::calls);
  ++users_[name].calls;
  c.user = name;
  return std::nullopt;
}

std::uint32_t Admission::source_calls(wire::Ipv4Address a) const {
  const auto s = sources_.find(a.value);
  return s != sources_.end() ? s->second.calls : 0;
}

std::uint32_t Admission::user_calls(const std::string& user) const {
  const auto u = users_.find(user);
  return u != users_.end() ? u->second.calls : 0;
}

std::uint32_t Admission::server_calls(wire::Ipv4Address a) const {
  const auto s = servers_.find(a.value);
  return s != servers_.end() ? s->second : 0;
}

bool Admission::take_token(const SetupRate& r, wire::Ipv4Address source, double now) {
  auto it = buckets_.find(source.value);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kMaxRateBuckets) {
      // Forget the sources whose bucket has refilled: they are as if new.
      std::erase_if(buckets_, [&](const auto& kv) {
        return kv.second.tokens + (now - kv.second.updated) * r.per_second >= r.burst;
      });
      if (buckets_.size() >= kMaxRateBuckets) return false;  // every tracked source is mid-burst
    }
    it = buckets_.emplace(source.value, Bucket{static_cast<double>(r.burst), now}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min<double>(r.burst, b.tokens + std::max(0.0, now - b.updated) * r.per_second);
  b.updated = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace pptp::policy
