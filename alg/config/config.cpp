#include "alg/config/config.hpp"
#include "alg/daemon/ha_options.hpp"
#include "nftables/rules.hpp"
#include "proxy/limits.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace pptp::config {

namespace {

// Every reader returns the value or the error at the node's position: no exceptions here.
template <class T>
using Read = Result<T, ConfigError>;

ConfigError error_at(const YAML::Node& at, std::string message) {
  const YAML::Mark m = at.Mark();
  return ConfigError{m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0, std::move(message)};
}

std::string joined(std::span<const std::string_view> words) {
  std::string list;
  for (std::string_view w : words) {
    if (!list.empty()) list += ", ";
    list += w;
  }
  return list;
}

// The value's text, or the error "expected WHAT, not TEXT".
Read<std::string> text(const YAML::Node& v, std::string_view expected) {
  if (!v.IsScalar() || v.Scalar().empty()) return unexpected(error_at(v, "expected " + std::string(expected)));
  return v.Scalar();
}

ConfigError not_a(const YAML::Node& v, std::string_view expected) {
  return error_at(v, "expected " + std::string(expected) + ", not '" + v.Scalar() + "'");
}

// YAML 1.2 booleans only: `yes`/`on` are YAML 1.1 and read differently by other tools.
Read<bool> boolean(const YAML::Node& v) {
  auto s = text(v, "true or false");
  if (!s) return unexpected(s.error());
  if (*s == "true" || *s == "false") return *s == "true";
  return unexpected(not_a(v, "true or false"));
}

Read<std::uint16_t> queue_number(const YAML::Node& v) {
  constexpr std::string_view kExpected = "a queue number (0 to 65535)";
  auto s = text(v, kExpected);
  if (!s) return unexpected(s.error());
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec != std::errc{} || end != s->data() + s->size() || value > std::numeric_limits<std::uint16_t>::max()) {
    return unexpected(not_a(v, kExpected));
  }
  return static_cast<std::uint16_t>(value);
}

// Packets per second per source; 0 turns the limit off.
Read<std::uint32_t> rate_per_second(const YAML::Node& v) {
  constexpr std::string_view kExpected = "packets per second (0 = off, at most 1000000)";
  constexpr std::uint32_t kMaxRate = 1'000'000;
  auto s = text(v, kExpected);
  if (!s) return unexpected(s.error());
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec != std::errc{} || end != s->data() + s->size() || value > kMaxRate) return unexpected(not_a(v, kExpected));
  return value;
}

// Seconds in (above, at_most]: a finite number.
Read<double> seconds(const YAML::Node& v, std::string_view expected, double above, double at_most) {
  auto s = text(v, expected);
  if (!s) return unexpected(s.error());
  double value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec != std::errc{} || end != s->data() + s->size() || !std::isfinite(value) || value <= above ||
      value > at_most) {
    return unexpected(not_a(v, expected));
  }
  return value;
}

Read<double> positive_seconds(const YAML::Node& v) {
  return seconds(v, "a positive number of seconds", 0, std::numeric_limits<double>::infinity());
}

// ha-commit-timeout: the error says what the number is for and its bounds.
Read<double> commit_timeout(const YAML::Node& v) {
  static const std::string kExpected = daemon::commit_timeout_expected();
  return seconds(v, kExpected, std::nextafter(double{daemon::kMinCommitTimeout}, 0.0), daemon::kMaxCommitTimeout);
}

// ha-virtual-address: an IPv4 address in dotted form.
Read<std::string> ipv4_address(const YAML::Node& v) {
  constexpr std::string_view kExpected = "an IPv4 ADDRESS (the outside virtual address keepalived moves)";
  auto s = text(v, kExpected);
  if (!s) return unexpected(s.error());
  in_addr a{};
  if (::inet_pton(AF_INET, s->c_str(), &a) != 1) return unexpected(not_a(v, kExpected));
  return s;
}

// A whole number within [least, most]; the error says which.
Read<std::uint32_t> count_within(const YAML::Node& v, std::uint32_t least, std::uint32_t most) {
  const std::string expected = most == std::numeric_limits<std::uint32_t>::max()
                                   ? "a whole number, at least " + std::to_string(least)
                                   : "a whole number from " + std::to_string(least) + " to " + std::to_string(most);
  auto s = text(v, expected);
  if (!s) return unexpected(s.error());
  std::uint32_t value = 0;
  const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), value);
  if (ec != std::errc{} || end != s->data() + s->size() || value < least || value > most) {
    return unexpected(not_a(v, expected));
  }
  return value;
}

// A budget: a whole number from 1 up.
Read<std::uint32_t> positive_count(const YAML::Node& v) {
  return count_within(v, 1, std::numeric_limits<std::uint32_t>::max());
}

// The service runs with / as its working directory: a relative path would be a surprise.
Read<std::string> absolute_path(const YAML::Node& v) {
  constexpr std::string_view kExpected = "an absolute path (starting with /)";
  auto s = text(v, kExpected);
  if (s && s->front() != '/') return unexpected(not_a(v, kExpected));
  return s;
}

// An absolute path, or "none" (no control socket).
Read<std::string> socket_path(const YAML::Node& v) {
  if (v.IsScalar() && v.Scalar() == "none") return std::string("none");
  return absolute_path(v);
}

constexpr std::array<std::string_view, 5> kLogLevels{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> kLogFormats{"text", "json"};
constexpr std::array<std::string_view, 2> kFastPathModes{"ip", "netdev"};
constexpr std::array<std::string_view, 2> kHaNodes{"0", "1"};

Read<std::string> one_of(const YAML::Node& v, std::span<const std::string_view> choices) {
  const std::string expected = "one of " + joined(choices);
  auto s = text(v, expected);
  if (s && std::find(choices.begin(), choices.end(), *s) == choices.end()) return unexpected(not_a(v, expected));
  return s;
}

// Reads the value into its field; empty, or the error.
template <class T, class U>
std::optional<ConfigError> store(Read<T> read, std::optional<U>& into) {
  if (!read) return read.error();
  into = std::move(*read);
  return std::nullopt;
}

using Apply = std::optional<ConfigError> (*)(const YAML::Node& value, Settings& s);
struct Key {
  std::string_view name;
  Apply apply;
};

// One row per daemon flag (alg/main.cpp); the key is the flag without its dashes.
constexpr std::array kKeys{
    Key{"queue", [](const YAML::Node& v, Settings& s) { return store(queue_number(v), s.queue); }},
    Key{"install-rules", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.install_rules); }},
    Key{"backend", [](const YAML::Node& v, Settings& s) { return store(one_of(v, pptp::nft::kBackendChoices), s.backend); }},
    Key{"fail-open", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.fail_open); }},
    Key{"no-fast-path", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.no_fast_path); }},
    Key{"keep-fast-path", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.keep_fast_path); }},
    Key{"fast-path", [](const YAML::Node& v, Settings& s) { return store(one_of(v, kFastPathModes), s.fast_path_mode); }},
    Key{"allow-unknown-gre", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.allow_unknown_gre); }},
    Key{"idle-timeout", [](const YAML::Node& v, Settings& s) { return store(positive_seconds(v), s.idle_timeout); }},
    Key{"status-file", [](const YAML::Node& v, Settings& s) { return store(absolute_path(v), s.status_file); }},
    Key{"policy", [](const YAML::Node& v, Settings& s) { return store(absolute_path(v), s.policy); }},
    Key{"pid-file", [](const YAML::Node& v, Settings& s) { return store(absolute_path(v), s.pid_file); }},
    Key{"log-level", [](const YAML::Node& v, Settings& s) { return store(one_of(v, kLogLevels), s.log_level); }},
    Key{"user", [](const YAML::Node& v, Settings& s) { return store(text(v, "a user name"), s.user); }},
    Key{"syn-limit", [](const YAML::Node& v, Settings& s) { return store(rate_per_second(v), s.syn_limit); }},
    Key{"queued-gre-limit",
        [](const YAML::Node& v, Settings& s) { return store(rate_per_second(v), s.queued_gre_limit); }},
    Key{"control-socket", [](const YAML::Node& v, Settings& s) { return store(socket_path(v), s.control_socket); }},
    Key{"metrics-listen",
        [](const YAML::Node& v, Settings& s) { return store(text(v, "ADDRESS:PORT"), s.metrics_listen); }},
    Key{"log-format", [](const YAML::Node& v, Settings& s) { return store(one_of(v, kLogFormats), s.log_format); }},
    Key{"proxy", [](const YAML::Node& v, Settings& s) { return store(boolean(v), s.proxy); }},
    Key{"memory-budget", [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.memory_budget); }},
    Key{"source-connections",
        [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.source_connections); }},
    Key{"source-half-open", [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.source_half_open); }},
    Key{"source-calls", [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.source_calls); }},
    Key{"source-reassembly",
        [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.source_reassembly); }},
    Key{"source-held", [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.source_held); }},
    Key{"proxy-source-calls",
        [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.proxy_source_calls); }},
    Key{"proxy-calls",
        [](const YAML::Node& v, Settings& s) {
          return store(count_within(v, proxy::kMinCalls, proxy::kMaxCalls), s.proxy_calls);
        }},
    Key{"proxy-source-connections",
        [](const YAML::Node& v, Settings& s) { return store(positive_count(v), s.proxy_source_connections); }},
    Key{"ha-peer", [](const YAML::Node& v, Settings& s) { return store(text(v, "ADDRESS:PORT"), s.ha_peer); }},
    Key{"ha-listen", [](const YAML::Node& v, Settings& s) { return store(text(v, "ADDRESS:PORT"), s.ha_listen); }},
    Key{"ha-key-file", [](const YAML::Node& v, Settings& s) { return store(absolute_path(v), s.ha_key_file); }},
    Key{"ha-node", [](const YAML::Node& v, Settings& s) { return store(one_of(v, kHaNodes), s.ha_node); }},
    Key{"ha-virtual-address",
        [](const YAML::Node& v, Settings& s) { return store(ipv4_address(v), s.ha_virtual_address); }},
    Key{"ha-commit-command",
        [](const YAML::Node& v, Settings& s) { return store(text(v, "COMMAND or none"), s.ha_commit_command); }},
    Key{"ha-commit-timeout",
        [](const YAML::Node& v, Settings& s) { return store(commit_timeout(v), s.ha_commit_timeout); }},
    Key{"proxy-servers",
        [](const YAML::Node& v, Settings& s) { return store(text(v, "PREFIX[,PREFIX...]"), s.proxy_servers); }},
    Key{"proxy-outside",
        [](const YAML::Node& v, Settings& s) { return store(text(v, "NAME[,NAME...]"), s.proxy_outside); }},
};

constexpr auto kKeyNames = [] {
  std::array<std::string_view, kKeys.size()> names{};
  std::transform(kKeys.begin(), kKeys.end(), names.begin(), [](const Key& k) { return k.name; });
  return names;
}();

// One `key: value` of the file into `s`; `seen` catches a key given twice.
std::optional<ConfigError> apply(const YAML::Node& name, const YAML::Node& value, std::set<std::string_view>& seen,
                                 Settings& s) {
  const std::string text = name.IsScalar() ? name.Scalar() : std::string();
  const auto* k = std::find_if(kKeys.begin(), kKeys.end(), [&](const Key& row) { return row.name == text; });
  if (k == kKeys.end()) return error_at(name, "unknown key '" + text + "' (keys: " + joined(kKeyNames) + ")");
  if (!seen.insert(k->name).second) return error_at(name, "key '" + text + "' is given twice");
  // An empty value's position is wherever the next token is: point at the key instead.
  if (value.IsNull()) return error_at(name, "key '" + text + "' has no value");
  return k->apply(value, s);
}

Read<Settings> load(const YAML::Node& root) {
  Settings s;
  if (root.IsNull()) return s;  // an empty file: every flag keeps its default
  if (!root.IsMap()) return unexpected(error_at(root, "the configuration must be a mapping (key: value)"));
  std::set<std::string_view> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (auto e = apply(it->first, it->second, seen, s)) return unexpected(std::move(*e));
  }
  return s;
}

}  // namespace

std::span<const std::string_view> key_names() { return kKeyNames; }

Result<Settings, ConfigError> parse_config(std::string_view yaml) {
  try {
    return load(YAML::Load(std::string(yaml)));  // yaml-cpp reports syntax errors by throwing
  } catch (const YAML::Exception& e) {
    return unexpected(ConfigError{e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
  }
}

Result<Settings, std::string> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(path + ": cannot read the file (does it exist, and may this user read it?)");
  std::ostringstream text;
  text << in.rdbuf();
  auto s = parse_config(text.str());
  if (!s) return unexpected(to_string(s.error(), path));
  return *s;
}

}  // namespace pptp::config
