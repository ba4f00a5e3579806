#include "policy/policy.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace pptp::policy {

namespace {

// Three-valued: a user name not seen yet makes a match possible, not certain.
enum class Match : std::uint8_t { No, Maybe, Yes };

Match operator||(Match a, Match b) { return std::max(a, b); }

Match match_user(const User& u, const Subject& s) {
  if (!u.addresses.empty() &&
      std::none_of(u.addresses.begin(), u.addresses.end(), [&](const Prefix& p) { return p.contains(s.source); })) {
    return Match::No;
  }
  if (u.auth_names.empty()) return Match::Yes;
  if (s.name) {
    return std::find(u.auth_names.begin(), u.auth_names.end(), *s.name) != u.auth_names.end() ? Match::Yes
                                                                                             : Match::No;
  }
  return s.name_final ? Match::No : Match::Maybe;
}

Match match_from(const Policy& p, const Rule& r, const Subject& s) {
  if (r.from_any) return Match::Yes;
  Match m = Match::No;
  for (const Prefix& prefix : r.sources) {
    if (prefix.contains(s.source)) return Match::Yes;
  }
  for (std::size_t u : r.users) m = m || match_user(p.users[u], s);
  for (std::size_t g : r.groups) {
    for (std::size_t u : p.groups[g].members) m = m || match_user(p.users[u], s);
  }
  return m;
}

Match match_rule(const Policy& p, const Rule& r, const Subject& s, WallTime t) {
  const bool server = r.servers.empty() || std::any_of(r.servers.begin(), r.servers.end(),
                                                       [&](const Prefix& x) { return x.contains(s.server); });
  const bool time = r.when.empty() ||
                    std::any_of(r.when.begin(), r.when.end(), [&](const TimeWindow& w) { return in_window(w, t); });
  return (server && time) ? match_from(p, r, s) : Match::No;
}

bool parse_number(std::string_view text, unsigned& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

const char* const kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::string minutes(std::uint16_t m) {
  char out[8];
  std::snprintf(out, sizeof out, "%02u:%02u", m / 60u, m % 60u);
  return out;
}

}  // namespace

std::string to_string(const Prefix& p) {
  return p.length == 32 ? wire::to_string(p.network) : wire::to_string(p.network) + "/" + std::to_string(p.length);
}

bool parse_prefix(std::string_view text, Prefix& out, std::string& why) {
  const auto slash = text.find('/');
  Prefix p;
  if (!wire::parse_ipv4_address(text.substr(0, slash), p.network)) {
    why = "not an IPv4 address or prefix (write 192.0.2.7 or 192.0.2.0/24)";
    return false;
  }
  if (slash != std::string_view::npos) {
    unsigned length = 0;
    if (!parse_number(text.substr(slash + 1), length) || length > 32) {
      why = "the prefix length must be a number from 0 to 32";
      return false;
    }
    p.length = static_cast<std::uint8_t>(length);
  }
  const std::uint32_t mask = p.length == 0 ? 0 : ~std::uint32_t{0} << (32 - p.length);
  if ((p.network.value & ~mask) != 0) {
    why = "host bits are set after the prefix length (did you mean " +
          to_string(Prefix{{p.network.value & mask}, p.length}) + "?)";
    return false;
  }
  out = p;
  return true;
}

bool in_window(const TimeWindow& w, WallTime t) {
  // A window that wraps past midnight belongs to the day it starts on.
  const auto day_bit = [&](int day) { return (w.days >> ((day + 7) % 7)) & 1u; };
  if (w.from_minute <= w.to_minute) {
    return day_bit(t.weekday) && t.minute >= w.from_minute && t.minute < w.to_minute;
  }
  if (t.minute >= w.from_minute) return day_bit(t.weekday);
  return t.minute < w.to_minute && day_bit(t.weekday - 1);
}

std::string_view name_of(Action a) { return a == Action::Allow ? "allow" : "deny"; }

std::string_view name_of(OnReload r) { return r == OnReload::NewCalls ? "new_calls" : "rejudge"; }
std::string_view name_of(OnDeny d) { return d == OnDeny::Drop ? "drop" : "refuse"; }

std::string_view name_of(Outcome o) {
  switch (o) {
    case Outcome::Allow: return "allow";
    case Outcome::Deny: return "deny";
    case Outcome::Pending: return "pending";
  }
  return "?";
}

Limits Policy::limits_of(std::size_t user) const {
  Limits l = per_user;
  if (user < users.size()) {
    if (users[user].limits.control_connections) l.control_connections = users[user].limits.control_connections;
    if (users[user].limits.calls) l.calls = users[user].limits.calls;
  }
  return l;
}

std::string rule_name(const Policy& p, int rule) {
  if (rule < 0 || static_cast<std::size_t>(rule) >= p.rules.size()) return "default";
  return p.rules[static_cast<std::size_t>(rule)].name;
}

std::optional<std::size_t> identify(const Policy& p, const Subject& s) {
  for (std::size_t i = 0; i < p.users.size(); ++i) {
    if (match_user(p.users[i], s) == Match::Yes) return i;
  }
  return std::nullopt;
}

Decision decide(const Policy& p, const Subject& s, WallTime t) {
  Decision d;
  d.user = identify(p, s);
  bool maybe_allow = false, maybe_deny = false;  // actions of rules that may match
  int first_maybe = kDefaultRule;
  Action action = p.default_action;
  int rule = kDefaultRule;
  for (std::size_t i = 0; i < p.rules.size(); ++i) {
    const Match m = match_rule(p, p.rules[i], s, t);
    if (m == Match::No) continue;
    if (m == Match::Maybe) {
      (p.rules[i].action == Action::Allow ? maybe_allow : maybe_deny) = true;
      if (first_maybe == kDefaultRule) first_maybe = static_cast<int>(i);
      continue;
    }
    action = p.rules[i].action;
    rule = static_cast<int>(i);
    break;
  }
  d.rule = rule;
  const bool undecided = (action == Action::Allow && maybe_deny) || (action == Action::Deny && maybe_allow);
  if (undecided) {
    d.outcome = Outcome::Pending;
    d.rule = first_maybe;
    d.reason = "waiting for the PPP authentication name (rule " + rule_name(p, first_maybe) + " may apply)";
    return d;
  }
  if (action == Action::Deny) {
    d.outcome = Outcome::Deny;
    d.reason = rule == kDefaultRule ? "no rule allows it (default deny)" : "rule " + rule_name(p, rule) + " denies";
    return d;
  }
  if (p.require_authentication && !s.name) {
    d.outcome = s.name_final ? Outcome::Deny : Outcome::Pending;
    d.reason = s.name_final ? "no PPP authentication name seen (authentication.required)"
                            : "waiting for the PPP authentication name (authentication.required)";
    return d;
  }
  d.outcome = Outcome::Allow;
  d.reason = rule == kDefaultRule ? "no rule matches (default allow)" : "rule " + rule_name(p, rule) + " allows";
  return d;
}

std::string describe(const Policy& p) {
  std::ostringstream out;
  const auto prefixes = [](const std::vector<Prefix>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + to_string(x);
    return s;
  };
  const auto limit = [](const std::optional<std::uint32_t>& v) { return v ? std::to_string(*v) : std::string("no limit"); };
  const auto pair = [&](const Limits& l) {
    return "control connections " + limit(l.control_connections) + ", calls " + limit(l.calls);
  };
  out << "users (" << p.users.size() << "):\n";
  for (const User& u : p.users) {
    out << "  " << u.name << ": from " << (u.addresses.empty() ? std::string("any inside address") : prefixes(u.addresses));
    if (!u.auth_names.empty()) {
      out << ", authenticating as ";
      for (std::size_t i = 0; i < u.auth_names.size(); ++i) out << (i ? ", " : "") << '"' << u.auth_names[i] << '"';
    }
    if (u.limits.control_connections || u.limits.calls) {
      const Limits l = p.limits_of(static_cast<std::size_t>(&u - p.users.data()));
      out << "; limits: " << pair(l);
    }
    out << "\n";
  }
  out << "groups (" << p.groups.size() << "):\n";
  for (const Group& g : p.groups) {
    out << "  " << g.name << ":";
    for (std::size_t m : g.members) out << " " << p.users[m].name;
    out << "\n";
  }
  out << "rules, first match wins (" << p.rules.size() << "):\n";
  for (std::size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    out << "  " << i + 1 << ". " << r.name << " (line " << r.line << "): " << name_of(r.action) << " ";
    std::vector<std::string> who;
    if (r.from_any) who.emplace_back("anyone");
    for (std::size_t u : r.users) who.push_back("user " + p.users[u].name);
    for (std::size_t g : r.groups) who.push_back("group " + p.groups[g].name);
    if (!r.sources.empty()) who.push_back("clients in " + prefixes(r.sources));
    for (std::size_t k = 0; k < who.size(); ++k) out << (k ? " or " : "") << who[k];
    out << " to " << (r.servers.empty() ? std::string("any server") : prefixes(r.servers));
    for (const TimeWindow& w : r.when) {
      out << "; on";
      for (int d = 0; d < 7; ++d) {
        if ((w.days >> d) & 1) out << " " << kDays[d];
      }
      out << " " << minutes(w.from_minute) << "-" << minutes(w.to_minute);
    }
    out << "\n";
  }
  out << "  otherwise: " << name_of(p.default_action) << "\n";
  out << "limits:\n  per source address: " << pair(p.per_source);
  if (p.setup_rate) out << ", call set-ups " << p.setup_rate->per_second << "/s (burst " << p.setup_rate->burst << ")";
  out << "\n  per user (unless the user says otherwise): " << pair(p.per_user)
      << "\n  per server: calls " << limit(p.per_server_calls) << "\n";
  out << "authentication: "
      << (p.require_authentication ? "required: a call whose PPP authentication name does not show within "
                                   : "not required; a name that shows within ")
      << p.authentication_packets << " GRE packets" << (p.require_authentication ? " loses its GRE\n" : " is judged by the rules\n");
  out << (p.on_deny == OnDeny::Drop
              ? "denied call set-ups: dropped (the Outgoing-Call-Request never reaches the server)\n"
              : "denied hosts and call set-ups: refused with RFC 2637 result codes (proxy mode only: "
                "Start-Control-Connection-Reply 4, Outgoing-Call-Reply 7)\n");
  out << "on reload: "
      << (p.on_reload == OnReload::Rejudge ? "live calls are judged again; those now denied lose their GRE\n"
                                           : "the new rules apply to new calls; live calls keep running\n");
  return out.str();
}

}  // namespace pptp::policy
