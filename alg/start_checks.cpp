// What the daemon refuses before it starts, from its settings alone (no socket, no file, no
// kernel): `pptp-alg check --config` runs the same checks, so that a file it calls valid does
// not stop the service at start (operator review s38 F3: the unit restarted in a loop).
#include "alg/daemon/control_server.hpp"
#include "alg/daemon/ha_options.hpp"
#include "alg/daemon_flags.hpp"

namespace pptp::cli {

namespace {

std::optional<std::string> fast_path_mode_error(const DaemonFlags& f) {
  if (f.fast_path_mode != "netdev" || (!f.proxy && !f.no_fast_path)) return std::nullopt;
  return std::string("--fast-path netdev (fast-path: netdev) needs the transparent gateway's fast path: leave out ") +
         (f.proxy ? "--proxy or --fast-path netdev" : "--no-fast-path or --fast-path netdev");
}

std::optional<std::string> metrics_error(const DaemonFlags& f) {
  if (f.d.metrics_listen.empty()) return std::nullopt;
  const auto parsed = pptp::daemon::parse_listen_address(f.d.metrics_listen);
  if (parsed) return std::nullopt;
  return "--metrics-listen (metrics-listen): " + parsed.error();
}

// docs/ha.md, "Configuration": the sync endpoints, and the virtual address that is neither
// missing its pair nor the node's own sync address.
std::optional<std::string> ha_error(const DaemonFlags& f) {
  const pptp::daemon::HaOptions& h = f.d.ha;
  if (!h.enabled()) {
    if (h.virtual_address.empty()) return std::nullopt;
    return std::string("--ha-virtual-address (ha-virtual-address) needs the pair's sync addresses: give ha-peer "
                       "and ha-listen, or drop ha-virtual-address");
  }
  const auto peer = pptp::daemon::parse_ipv4_endpoint(h.peer);
  if (!peer) return "--ha-peer (ha-peer): " + peer.error();
  const auto listen = pptp::daemon::parse_ipv4_endpoint(h.listen);
  if (!listen) return "--ha-listen (ha-listen, needed with ha-peer): " + listen.error();
  if (auto e = pptp::daemon::sync_endpoints_error(*listen, *peer)) return e;
  if (h.key_file.empty()) return std::string("--ha-key-file (ha-key-file) is needed with ha-peer");
  if (h.virtual_address.empty()) return std::nullopt;
  wire::Ipv4Address a;
  if (!wire::parse_ipv4_address(h.virtual_address, a)) {
    return "--ha-virtual-address (ha-virtual-address) '" + h.virtual_address + "' is not an IPv4 address";
  }
  if (listen->address == a) {
    return "--ha-virtual-address (ha-virtual-address) " + h.virtual_address +
           " is this node's sync address: give the outside virtual address keepalived moves";
  }
  return std::nullopt;
}

// Proxy-mode flags given to the transparent daemon (--proxy-servers and --proxy-outside are
// refused by their parsers); and HA, which pairs the transparent gateway only (docs/ha.md):
// a proxy would run unpaired while its operator believes it paired (operator review s38 F7).
std::optional<std::string> mode_error(const DaemonFlags& f) {
  const DaemonFlags defaults;
  if (f.proxy && f.d.ha.enabled()) {
    return std::string("--ha-peer (ha-peer): high availability pairs the transparent gateway, not the proxy "
                       "(docs/ha.md): leave out --proxy or the ha- settings");
  }
  if (f.proxy) return std::nullopt;
  const auto proxy_only = [](const char* name) {
    return "--" + std::string(name) + " (" + name + ") needs --proxy";
  };
  if (f.proxy_calls != defaults.proxy_calls) return proxy_only("proxy-calls");
  if (f.proxy_source_calls != defaults.proxy_source_calls) return proxy_only("proxy-source-calls");
  if (f.proxy_source_connections != defaults.proxy_source_connections) return proxy_only("proxy-source-connections");
  return std::nullopt;
}

}  // namespace

// The transparent gateway's settings a proxy does not use, set away from their defaults (a
// warning at the proxy's start names them).
std::vector<std::string> settings_a_proxy_ignores(const DaemonFlags& f) {
  const DaemonFlags defaults;
  const pptp::gateway::BudgetLimits& b = f.d.gateway.budgets;
  const pptp::gateway::BudgetLimits& db = defaults.d.gateway.budgets;
  const std::pair<const char*, bool> settings[] = {
      {"queue", f.d.queue != defaults.d.queue},
      {"backend", f.backend != defaults.backend},
      {"fail-open", f.d.fail_open},
      {"allow-unknown-gre", f.d.gateway.allow_unknown_gre},
      {"syn-limit", f.d.syn_limit != defaults.d.syn_limit},
      {"queued-gre-limit", f.d.queued_gre_limit != defaults.d.queued_gre_limit},
      {"memory-budget", f.memory_budget != defaults.memory_budget},
      {"source-connections", b.source_connections != db.source_connections},
      {"source-half-open", b.source_half_open != db.source_half_open},
      {"source-calls", b.source_calls != db.source_calls},
      {"source-reassembly", f.source_reassembly != defaults.source_reassembly},
      {"source-held", f.source_held != defaults.source_held},
  };
  std::vector<std::string> ignored;
  for (const auto& [name, set] : settings) {
    if (set) ignored.emplace_back(name);
  }
  return ignored;
}

std::optional<std::string> start_error(const DaemonFlags& f) {
  if (auto e = fast_path_mode_error(f)) return e;
  if (auto e = mode_error(f)) return e;
  // Each says what is wrong itself (stderr).
  if (!proxy_servers_of(f) || !proxy_outside_of(f)) return std::string();
  if (auto e = metrics_error(f)) return e;
  return ha_error(f);
}

}  // namespace pptp::cli
