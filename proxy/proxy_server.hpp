// Proxy mode's event loop (`pptp-alg --proxy`, docs/proxy.md): the listener that REDIRECTed
// TCP/1723 reaches, one Session per client control connection, and the GRE relay between
// the legs: one raw IPPROTO_GRE socket reads both peers' GRE (the server's to the router's
// address; the client's to the server's, delivered here by the policy route) and sends
// toward servers; an IPPROTO_RAW socket (IP_HDRINCL) sends toward clients with the
// server's address as source, the peer the client's PPTP stack expects GRE from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/proxy_policy.hpp"
#include "proxy/proxy_rules.hpp"

namespace pptp::proxy {

struct ProxyOptions {
  bool install_rules = false;
  std::uint16_t listen_port = kListenPort;
  std::string pid_file;
  std::string status_file;
  std::string policy_file;  // rules.yaml (docs/policy.md); read again on SIGHUP
  std::string control_socket;  // `pptp-alg ctl` (proxy_control.hpp); empty: none
  double call_idle = 300;       // seconds without GRE, then the call is ended (--idle-timeout)
  std::string user;             // --user: run as this user once set up (CAP_NET_ADMIN kept)
  bool fast_path = true;        // the kernel relays established calls' GRE (--no-fast-path: off)
  ProxyLimits limits;  // --proxy-source-calls, --proxy-source-connections (the total: ProxyListener)
  std::vector<policy::Prefix> servers;  // --proxy-servers: the servers proxied (empty: every one)
  std::string metrics_listen;           // --metrics-listen ADDR:PORT (GET /metrics); empty: none
  bool keep_fast_path = false;          // --keep-fast-path: not applied in proxy mode (logged why)
  std::vector<std::string> outside;     // --proxy-outside; empty: the default route's interfaces
};

// Runs until SIGINT/SIGTERM (SIGHUP reloads the policy); returns the exit status.
int run_proxy(const ProxyOptions& options);

}  // namespace pptp::proxy
