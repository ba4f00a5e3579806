// The policy model (what rules.yaml says, docs/policy.md) and the decision: may this client
// open a tunnel to this server, now, as this user? Pure: no I/O, no clock of its own (the
// caller passes the wall time), no sockets. The loader (loader.hpp) builds a Policy from YAML;
// the gateway asks decide() when a control connection opens, when a call is set up, and
// again when the call's PPP authentication name shows in its GRE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alg/wire/ip.hpp"

namespace pptp::policy {

// The PPP authentication name must show within this many GRE packets of a call (both
// directions); the tracker searches that many (track::kAuthScanPackets).
inline constexpr std::uint32_t kMaxAuthenticationPackets = 64;
inline constexpr std::uint32_t kDefaultAuthenticationPackets = 32;
inline constexpr std::size_t kMaxUsers = 65536;
inline constexpr std::size_t kMaxRules = 65536;
inline constexpr std::size_t kMaxNameLength = 255;  // a PAP Peer-ID length is one octet

struct Prefix {
  wire::Ipv4Address network;
  std::uint8_t length = 32;
  bool contains(wire::Ipv4Address a) const {
    const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
    return (a.value & mask) == (network.value & mask);
  }
  bool operator==(const Prefix&) const = default;
};
std::string to_string(const Prefix& p);
// "192.0.2.0/24" or "192.0.2.7"; false on anything else (host bits set are an error too).
bool parse_prefix(std::string_view text, Prefix& out, std::string& why);

// An absent limit is no limit.
struct Limits {
  std::optional<std::uint32_t> control_connections;
  std::optional<std::uint32_t> calls;
};

// A call set-up rate per inside source address: a token bucket.
struct SetupRate {
  double per_second = 0;
  std::uint32_t burst = 1;
};

// Days are a bit mask, bit 0 Monday ... bit 6 Sunday; minutes since local midnight, `to`
// exclusive. from > to wraps past midnight ("22:00-06:00").
struct TimeWindow {
  std::uint8_t days = 0x7f;
  std::uint16_t from_minute = 0;
  std::uint16_t to_minute = 24 * 60;
};

struct WallTime {
  std::uint8_t weekday = 0;  // 0 Monday ... 6 Sunday
  std::uint16_t minute = 0;  // since local midnight
};
bool in_window(const TimeWindow& w, WallTime t);

struct User {
  std::string name;
  int line = 0;
  std::vector<Prefix> addresses;       // empty: any inside address
  std::vector<std::string> auth_names;  // PPP authentication names; empty: any (or none)
  Limits limits;                        // overrides the policy's per_user limits
};

struct Group {
  std::string name;
  int line = 0;
  std::vector<std::size_t> members;  // indices into Policy::users
};

enum class Action : std::uint8_t { Allow, Deny };
std::string_view name_of(Action a);

struct Rule {
  std::string name;
  int line = 0;
  bool from_any = false;
  std::vector<std::size_t> users;    // the rule applies to any of these users,
  std::vector<std::size_t> groups;   // or any member of these groups,
  std::vector<Prefix> sources;       // or any client in these prefixes
  std::vector<Prefix> servers;       // empty: any server
  Action action = Action::Deny;
  std::vector<TimeWindow> when;      // empty: always
};

enum class OnReload : std::uint8_t { NewCalls, Rejudge };
std::string_view name_of(OnReload r);

// What a denied host or call is told. Drop: nothing (the transparent gateway cannot answer
// inside a TCP stream it forwards); Refuse: an RFC 2637 result code, which only the proxy
// mode (it terminates the control connection) can send.
enum class OnDeny : std::uint8_t { Drop, Refuse };
std::string_view name_of(OnDeny d);

struct Policy {
  std::vector<User> users;
  std::vector<Group> groups;
  std::vector<Rule> rules;
  Action default_action = Action::Deny;
  Limits per_source;
  Limits per_user;
  std::optional<std::uint32_t> per_server_calls;
  std::optional<SetupRate> setup_rate;  // per source
  bool require_authentication = false;
  std::uint32_t authentication_packets = kDefaultAuthenticationPackets;
  OnReload on_reload = OnReload::NewCalls;
  OnDeny on_deny = OnDeny::Drop;
  std::string origin;  // the file it came from, for logs

  Limits limits_of(std::size_t user) const;
};

// Who asks: the client as the router's inside sees it, the server, and the PPP
// authentication name once the call's GRE has shown it. `name_final`: no name will come any
// more (the search window is over), so a missing name is a fact, not a wait.
struct Subject {
  wire::Ipv4Address source;
  wire::Ipv4Address server;
  std::optional<std::string> name;
  bool name_final = false;
};

enum class Outcome : std::uint8_t {
  Allow,
  Deny,
  Pending,  // the answer depends on a PPP authentication name not seen yet
};
std::string_view name_of(Outcome o);

inline constexpr int kDefaultRule = -1;

struct Decision {
  Outcome outcome = Outcome::Deny;
  int rule = kDefaultRule;  // the rule that decided; kDefaultRule for the default
  std::optional<std::size_t> user;  // who the subject is, where known
  std::string reason;
};

// First match wins (docs/policy.md). A rule that may match once a name is known makes the
// answer Pending unless every way the name could go leads to the same action.
Decision decide(const Policy& p, const Subject& s, WallTime t);

// The user the subject is: the first user in the file that it certainly matches.
std::optional<std::size_t> identify(const Policy& p, const Subject& s);

std::string rule_name(const Policy& p, int rule);

// What a policy means, in words, for `pptp-alg check`.
std::string describe(const Policy& p);

}  // namespace pptp::policy
