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

}  // namespace

std::optional<std::string> start_error(const DaemonFlags& f) {
  if (auto e = fast_path_mode_error(f)) return e;
  // Each says what is wrong itself (stderr).
  if (!proxy_servers_of(f) || !proxy_outside_of(f)) return std::string();
  if (auto e = metrics_error(f)) return e;
  return ha_error(f);
}

}  // namespace pptp::cli
