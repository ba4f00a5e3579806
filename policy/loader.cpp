#include "policy/loader.hpp"

#include "policy/yaml_fields.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace pptp::policy {

namespace {

using yaml_fields::boolean;
using yaml_fields::fail;
using yaml_fields::Failure;
using yaml_fields::items;
using yaml_fields::number;
using yaml_fields::only_keys;
using yaml_fields::rate;
using yaml_fields::scalar;

Prefix prefix(const YAML::Node& n) {
  Prefix p;
  std::string why;
  if (!parse_prefix(scalar(n, "an address"), p, why)) fail(n, "'" + n.Scalar() + "': " + why);
  return p;
}

Limits limits(const YAML::Node& n, std::string_view where) {
  only_keys(n, where, {"control_connections", "calls"});
  Limits l;
  if (n["control_connections"]) l.control_connections = number(n["control_connections"], "control_connections", 0, 1u << 20);
  if (n["calls"]) l.calls = number(n["calls"], "calls", 0, 1u << 20);
  return l;
}

std::uint16_t clock_time(const YAML::Node& at, std::string_view text) {
  const auto bad = [&]() -> std::uint16_t {
    fail(at, "hours must look like \"08:00-18:00\" (24-hour clock, local time), not '" + at.Scalar() + "'");
  };
  if (text.size() != 5 || text[2] != ':') return bad();
  for (std::size_t i : {0u, 1u, 3u, 4u}) {
    if (text[i] < '0' || text[i] > '9') return bad();
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return bad();
  return static_cast<std::uint16_t>(h * 60 + m);
}

TimeWindow window(const YAML::Node& n) {
  only_keys(n, "when", {"days", "hours"});
  TimeWindow w;
  if (n["days"]) {
    static constexpr std::array<std::string_view, 7> kDays = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
    w.days = 0;
    for (const auto& d : items(n["days"], "days")) {
      std::string s = d.Scalar();
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto at = std::find(kDays.begin(), kDays.end(), s.substr(0, 3));
      if (at == kDays.end() || (s.size() > 3 && s.size() < 6)) {
        fail(d, "'" + d.Scalar() + "' is not a day (write mon, tue, wed, thu, fri, sat, sun)");
      }
      w.days |= static_cast<std::uint8_t>(1u << (at - kDays.begin()));
    }
  }
  if (n["hours"]) {
    const std::string h = scalar(n["hours"], "hours");
    const auto dash = h.find('-');
    if (dash == std::string::npos) clock_time(n["hours"], "");
    w.from_minute = clock_time(n["hours"], std::string_view(h).substr(0, dash));
    w.to_minute = clock_time(n["hours"], std::string_view(h).substr(dash + 1));
    if (w.from_minute == w.to_minute) fail(n["hours"], "hours: the window is empty (from equals to)");
  }
  return w;
}

class Loader {
 public:
  explicit Loader(PolicyMode mode) : mode_(mode) {}
  Policy load(const YAML::Node& doc) {
    if (doc.IsNull()) return std::move(p_);  // an empty file: deny everything
    only_keys(doc, "the top level",
              {"version", "default", "users", "groups", "servers", "rules", "limits", "authentication", "on_deny",
               "on_reload"});
    if (doc["version"] && number(doc["version"], "version", 1, 1) != 1) fail(doc["version"], "version must be 1");
    if (doc["default"]) p_.default_action = action(doc["default"]);
    if (doc["users"]) users(doc["users"]);
    if (doc["groups"]) groups(doc["groups"]);
    if (doc["servers"]) servers(doc["servers"]);
    if (doc["rules"]) rules(doc["rules"]);
    if (doc["limits"]) global_limits(doc["limits"]);
    if (doc["authentication"]) authentication(doc["authentication"]);
    if (doc["on_deny"]) on_deny(doc["on_deny"]);
    if (doc["on_reload"]) {
      const std::string v = scalar(doc["on_reload"], "on_reload");
      if (v == "new_calls") {
        p_.on_reload = OnReload::NewCalls;
      } else if (v == "rejudge") {
        p_.on_reload = OnReload::Rejudge;
      } else {
        fail(doc["on_reload"], "on_reload must be new_calls or rejudge, not '" + v + "'");
      }
    }
    return std::move(p_);
  }

 private:
  void on_deny(const YAML::Node& n) {
    const std::string v = scalar(n, "on_deny");
    if (v == "refuse" && mode_ == PolicyMode::Transparent) {
      fail(n, "on_deny: refuse (answering with an RFC 2637 result code) needs the proxy mode (--proxy): "
              "the transparent gateway cannot answer inside a stream it forwards; write on_deny: drop");
    }
    if (v != "drop" && v != "refuse") fail(n, "on_deny must be drop or refuse, not '" + v + "'");
    p_.on_deny = v == "refuse" ? OnDeny::Refuse : OnDeny::Drop;
  }

  static Action action(const YAML::Node& n) {
    const std::string v = scalar(n, "an action");
    if (v == "allow") return Action::Allow;
    if (v == "deny") return Action::Deny;
    fail(n, "the action must be allow or deny, not '" + v + "'");
  }

  static std::string name_key(const YAML::Node& key, std::string_view what) {
    const std::string name = scalar(key, what);
    if (name.empty() || name.size() > kMaxNameLength) fail(key, std::string(what) + " must be 1 to 255 characters");
    return name;
  }

  void users(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "users must be a mapping: a user name, then its addresses: and names:");
    for (auto it = n.begin(); it != n.end(); ++it) {
      User u;
      u.name = name_key(it->first, "a user name");
      u.line = it->first.Mark().line + 1;
      if (user_index_.count(u.name) != 0) fail(it->first, "user '" + u.name + "' is defined twice");
      const YAML::Node body = it->second;  // a copy: the iterator hands out a temporary
      only_keys(body, "user '" + u.name + "'", {"addresses", "names", "limits"});
      if (body["addresses"]) {
        for (const auto& a : items(body["addresses"], "addresses")) u.addresses.push_back(prefix(a));
      }
      if (body["names"]) {
        for (const auto& a : items(body["names"], "names")) {
          if (a.Scalar().empty() || a.Scalar().size() > kMaxNameLength) fail(a, "a PPP name must be 1 to 255 bytes");
          u.auth_names.push_back(a.Scalar());
        }
      }
      if (u.addresses.empty() && u.auth_names.empty()) {
        fail(it->first, "user '" + u.name + "' needs addresses: or names: (or both) to be recognised");
      }
      if (body["limits"]) u.limits = limits(body["limits"], "limits of user '" + u.name + "'");
      if (p_.users.size() >= kMaxUsers) fail(it->first, "too many users");
      user_index_[u.name] = p_.users.size();
      p_.users.push_back(std::move(u));
    }
  }

  std::size_t user_ref(const YAML::Node& n) {
    const auto it = user_index_.find(scalar(n, "a user"));
    if (it == user_index_.end()) fail(n, "no user '" + n.Scalar() + "' (define it under users:)");
    return it->second;
  }

  std::size_t group_ref(const YAML::Node& n) {
    const auto it = group_index_.find(scalar(n, "a group"));
    if (it == group_index_.end()) fail(n, "no group '" + n.Scalar() + "' (define it under groups:)");
    return it->second;
  }

  void groups(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "groups must be a mapping: a group name, then a list of user names");
    for (auto it = n.begin(); it != n.end(); ++it) {
      Group g;
      g.name = name_key(it->first, "a group name");
      g.line = it->first.Mark().line + 1;
      if (group_index_.count(g.name) != 0) fail(it->first, "group '" + g.name + "' is defined twice");
      for (const auto& m : items(it->second, "the members of group '" + g.name + "'")) g.members.push_back(user_ref(m));
      group_index_[g.name] = p_.groups.size();
      p_.groups.push_back(std::move(g));
    }
  }

  void servers(const YAML::Node& n) {
    if (!n.IsMap()) fail(n, "servers must be a mapping: a name, then addresses or prefixes");
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string name = name_key(it->first, "a server set name");
      if (server_sets_.count(name) != 0) fail(it->first, "server set '" + name + "' is defined twice");
      std::vector<Prefix> set;
      for (const auto& a : items(it->second, "server set '" + name + "'")) set.push_back(prefix(a));
      server_sets_[name] = std::move(set);
    }
  }

  void from(const YAML::Node& n, Rule& r) {
    if (n.IsScalar()) {
      if (n.Scalar() != "any") fail(n, "from: must be 'any' or a mapping with user:, users:, group:, groups:, addresses:");
      r.from_any = true;
      return;
    }
    only_keys(n, "from", {"user", "users", "group", "groups", "addresses"});
    for (const char* key : {"user", "users"}) {
      if (n[key]) {
        for (const auto& u : items(n[key], key)) r.users.push_back(user_ref(u));
      }
    }
    for (const char* key : {"group", "groups"}) {
      if (n[key]) {
        for (const auto& g : items(n[key], key)) r.groups.push_back(group_ref(g));
      }
    }
    if (n["addresses"]) {
      for (const auto& a : items(n["addresses"], "addresses")) r.sources.push_back(prefix(a));
    }
    if (r.users.empty() && r.groups.empty() && r.sources.empty()) fail(n, "from: names nobody (write from: any)");
  }

  void rules(const YAML::Node& n) {
    if (!n.IsSequence()) fail(n, "rules must be a list (each entry starts with '- ')");
    for (const auto& body : n) {
      Rule r;
      r.line = body.Mark().line + 1;
      only_keys(body, "a rule", {"name", "from", "to", "action", "when"});
      r.name = body["name"] ? name_key(body["name"], "a rule name") : "rule-" + std::to_string(p_.rules.size() + 1);
      if (!body["action"]) fail(body, "rule '" + r.name + "' needs action: allow or action: deny");
      r.action = action(body["action"]);
      if (!body["from"]) fail(body, "rule '" + r.name + "' needs from: (a user, a group, addresses, or any)");
      from(body["from"], r);
      if (body["to"]) {
        for (const auto& t : items(body["to"], "to")) {
          if (t.Scalar() == "any") {
            r.servers.clear();
            break;
          }
          if (const auto set = server_sets_.find(t.Scalar()); set != server_sets_.end()) {
            r.servers.insert(r.servers.end(), set->second.begin(), set->second.end());
          } else {
            Prefix p;
            std::string why;
            if (!parse_prefix(t.Scalar(), p, why)) {
              fail(t, "'" + t.Scalar() + "' is neither a server set (under servers:) nor an address: " + why);
            }
            r.servers.push_back(p);
          }
        }
      }
      if (body["when"]) {
        const YAML::Node& w = body["when"];
        if (w.IsSequence()) {
          for (const auto& x : w) r.when.push_back(window(x));
        } else {
          r.when.push_back(window(w));
        }
      }
      if (p_.rules.size() >= kMaxRules) fail(body, "too many rules");
      p_.rules.push_back(std::move(r));
    }
  }

  void global_limits(const YAML::Node& n) {
    only_keys(n, "limits", {"per_source", "per_user", "per_server"});
    if (const YAML::Node s = n["per_source"]) {
      only_keys(s, "limits.per_source", {"control_connections", "calls", "setup_rate", "setup_burst"});
      if (s["control_connections"]) {
        p_.per_source.control_connections = number(s["control_connections"], "control_connections", 0, 1u << 20);
      }
      if (s["calls"]) p_.per_source.calls = number(s["calls"], "calls", 0, 1u << 20);
      if (s["setup_burst"] && !s["setup_rate"]) fail(s["setup_burst"], "setup_burst needs setup_rate");
      if (s["setup_rate"]) {
        SetupRate r;
        r.per_second = rate(s["setup_rate"], "setup_rate");
        r.burst = s["setup_burst"] ? number(s["setup_burst"], "setup_burst", 1, 65536)
                                   : std::max<std::uint32_t>(1, static_cast<std::uint32_t>(r.per_second));
        p_.setup_rate = r;
      }
    }
    if (n["per_user"]) p_.per_user = limits(n["per_user"], "limits.per_user");
    if (const YAML::Node s = n["per_server"]) {
      only_keys(s, "limits.per_server", {"calls"});
      if (s["calls"]) p_.per_server_calls = number(s["calls"], "calls", 0, 1u << 20);
    }
  }

  void authentication(const YAML::Node& n) {
    only_keys(n, "authentication", {"required", "max_packets"});
    if (n["required"]) p_.require_authentication = boolean(n["required"], "required");
    if (n["max_packets"]) {
      p_.authentication_packets = number(n["max_packets"], "max_packets", 1, kMaxAuthenticationPackets);
    }
  }

  PolicyMode mode_;
  Policy p_;
  std::map<std::string, std::size_t> user_index_, group_index_;
  std::map<std::string, std::vector<Prefix>> server_sets_;
};

}  // namespace

std::string to_string(const PolicyError& e, std::string_view origin) {
  std::string out(origin);
  // Appended piece by piece: GCC 12 at -O2 reports a false -Wrestrict on
  // `"literal" + std::string` (GCC bug 105329).
  if (e.line > 0) {
    out += ':';
    out += std::to_string(e.line);
    out += ':';
    out += std::to_string(e.column);
  }
  out += ": ";
  out += e.message;
  return out;
}

Result<Policy, PolicyError> parse_policy(std::string_view yaml, std::string origin, PolicyMode mode) {
  try {
    Policy p = Loader(mode).load(YAML::Load(std::string(yaml)));
    p.origin = std::move(origin);
    return p;
  } catch (const Failure& f) {
    return unexpected(f.error);
  } catch (const YAML::Exception& e) {
    return unexpected(PolicyError{e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
  } catch (const std::exception& e) {
    return unexpected(PolicyError{0, 0, e.what()});
  }
}

Result<Policy, std::string> load_policy_file(const std::string& path, PolicyMode mode) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(path + ": cannot read the file (does it exist, and may this user read it?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto p = parse_policy(text.str(), path, mode);
  if (!p) return unexpected(to_string(p.error(), path));
  return std::move(*p);
}

}  // namespace pptp::policy
