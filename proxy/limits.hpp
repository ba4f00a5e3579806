// The proxy's own limits, which hold with or without a policy (docs/proxy.md, "Limits"): its
// defaults and bounds, read by the flags and the configuration file as well.
#pragma once

#include <cstdint>

#include "alg/core/counter_list.hpp"

namespace pptp::proxy {

// Calls one client address may hold through the proxy, over all its connections, without a
// policy limit: one host cannot take the whole Call-ID pool (65536 for the proxy).
inline constexpr std::uint32_t kMaxCallsPerSource = 1024;
// Client control connections open at once, per client address and in all, with or without a
// policy: each holds a descriptor (two once its server leg is up) and a connection from the
// router to the server, so one host must not take the descriptors every client needs.
inline constexpr std::uint32_t kMaxConnectionsPerSource = 64;
inline constexpr std::uint32_t kMaxConnections = 16384;
// Calls through the proxy in all (two Call IDs each, of the pool's 65535): below the pool, so
// that the limit, not an exhausted pool, answers first.
inline constexpr std::uint32_t kMaxCalls = 30000;
inline constexpr std::uint32_t kMinCalls = 8;  // --proxy-calls' least
// Fairness among hosts (s29 review, finding 2: one LAN host with 33 addresses took the whole
// pool): the last 1/kReservedShare of the calls in all go only to hosts holding fewer than
// kFairShareCalls calls. A host with many addresses must then use reserve/kFairShareCalls
// more of them (938 at the defaults, more than a /24 has) to keep a new host out.
inline constexpr std::uint32_t kReservedShare = 8;
inline constexpr std::uint32_t kFairShareCalls = 4;

// The kernel's receive buffer per leg (SO_RCVBUF, doubled by the kernel for its bookkeeping;
// the listener's, inherited by every accepted client leg, and the server leg's before its
// connect): control messages are small, and autotuning let a client that pipelines and
// reads slowly hold about 120 KB of unread data in the router per connection, 13 MB per
// address at 64 connections (s32 review). The send side: kLegSendBuffer (session.hpp).
inline constexpr int kLegReceiveBuffer = 16 * 1024;
// The send buffer of the raw socket that carries GRE to clients in user space: GRE to a
// client whose neighbour entry does not resolve waits in the kernel's neighbour queue (up
// to unres_qlen_bytes, 212,992 by default, each) on this socket's memory until the
// resolution fails; with the default buffer (212,992) two vanished clients left no room
// for anyone else's GRE (s33 review: a good call echoed 1-3 of 25 frames a 5 s). Set with
// SO_SNDBUFFORCE while the daemon still has CAP_NET_ADMIN (else SO_SNDBUF, capped by
// net.core.wmem_max).
inline constexpr int kGreSendBuffer = 8 * 1024 * 1024;

// The proxy's own limits (--proxy-source-calls, --proxy-source-connections, --proxy-calls;
// the connections in all from the descriptors the process may hold, listener.hpp).
struct ProxyLimits {
  std::uint32_t calls_per_source = kMaxCallsPerSource;
  std::uint32_t connections_per_source = kMaxConnectionsPerSource;
  std::uint32_t connections = kMaxConnections;
  std::uint32_t calls = kMaxCalls;
};

// The listener's (listener.hpp): in the status's `limits` and on the metrics endpoint as pptp_alg_proxy_limits_*_total,
// beside the policy's limit counters (proxy_policy.hpp).
#define PPTP_PROXY_LISTENER_COUNTERS(X)                                                         \
  X(accept_failures, "accept_failures",                                                         \
    "connections the listener could not accept (out of descriptors or memory: tried again after 100 ms)")

struct ListenerCounters {
  PPTP_PROXY_LISTENER_COUNTERS(PPTP_COUNTER_FIELD)
};
template <class F>
void visit_listener_counters(const ListenerCounters& c, F&& f) {
  PPTP_PROXY_LISTENER_COUNTERS(PPTP_COUNTER_VISIT)
}

}  // namespace pptp::proxy
