// The policy and the limits in proxy mode (docs/proxy.md, "Policy"): the same PolicyGate as
// the transparent gateway judges each client's start, each call and each live call again
// (by the PPP name the server accepted, followed in the relayed GRE by the same
// AuthFollower, and on reload); what the proxy does about a refusal is the relay's
// (result codes, relay_cut.cpp). Without a policy the proxy's own limits apply: calls per
// client address, control connections per client address and in all.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/track/tracker.hpp"
#include "gateway/log_limiter.hpp"
#include "gateway/policy_gate.hpp"
#include "proxy/limits.hpp"
#include "proxy/relay.hpp"

namespace pptp::proxy {

#define PPTP_PROXY_LIMIT_COUNTERS(X)                                                              \
  X(source_calls_refused, "source_calls_refused", "calls refused at the per-source call limit (busy)") \
  X(source_connections_refused, "source_connections_refused",                                     \
    "control connections refused at the per-source connection limit (reset at once)")             \
  X(connections_refused, "connections_refused",                                                   \
    "control connections refused at the proxy's limit of connections open at once (reset at once)") \
  X(calls_refused, "calls_refused",                                                                \
    "calls refused at the proxy's limit of calls in all, or from a host holding its fair share "  \
    "once the last eighth of that limit is reached (busy)")

struct LimitCounters {
  PPTP_PROXY_LIMIT_COUNTERS(PPTP_COUNTER_FIELD)
};
template <class F>
void visit_limit_counters(const LimitCounters& c, F&& f) {
  PPTP_PROXY_LIMIT_COUNTERS(PPTP_COUNTER_VISIT)
}

// Ends one call of a session: our Call ID toward the client, the CDN result code, why.
using CallCutter = std::function<void(std::uint16_t pac_call_id, std::uint8_t result_code, const std::string& why)>;

class SessionJudge;

class ProxyPolicy {
 public:
  ProxyPolicy(std::shared_ptr<spdlog::logger> log, const ProxyLimits& limits = {});

  // A new policy (start or reload). Under `on_reload: rejudge` live calls are judged again
  // and those now denied are cut.
  void set(std::shared_ptr<const policy::Policy> p);
  const policy::Policy* policy() const { return gate_.policy(); }

  // The judge of one client control connection (its Relay asks it); SessionJudge::on_cut
  // tells it how to end one of its calls. Null, and counted, when the connection is over
  // the proxy's limits (per client address, in all): the caller resets it.
  std::unique_ptr<SessionJudge> judge_for(const wire::Endpoint& client, const wire::Endpoint& server);
  // At most `n` connections open at once from now on (the descriptors the process has).
  void limit_connections(std::uint32_t n) { limits_in_force_.connections = n; }
  const ProxyLimits& limits() const { return limits_in_force_; }
  std::uint32_t connections() const { return connections_; }

  // A relayed GRE packet of call `pac_call_id` toward `toward`, its PPP payload: follows the
  // call's authentication and judges the call again when the server accepts a name, or when
  // none came in time. False: the packet is not relayed (the call was cut, or it is network
  // traffic before the user is decided: RFC 1661 3.5).
  bool on_gre(std::uint16_t pac_call_id, Leg toward, Bytes ppp);

  // Whether the call's GRE may be relayed by the kernel from now on (proxy_fastpath.hpp): its
  // policy allowed it, and its first packets were seen here (the PPP name the server
  // accepted, or track::kAuthScanPackets without one), as the transparent mode's offload.
  bool ready_for_kernel(std::uint16_t pac_call_id) const;
  // Packets the kernel relayed for the call since the last read: the call is busy (idle
  // timeout) and its counts go on.
  void on_kernel_gre(std::uint16_t pac_call_id, std::uint64_t to_server, std::uint64_t to_client);

  // What is known of an admitted call (the user the server accepted, its GRE), or nothing.
  const track::Call* call(std::uint16_t pac_call_id) const;
  // Ends live calls by operator's order (`pptp-alg ctl kill`, exactly one set): by our Call
  // ID toward the client (the ID `ctl calls` shows), by the user the server accepted, or by
  // the client's address. Each gets Call-Disconnect-Notify and Call-Clear-Request. Returns
  // how many calls were ended.
  struct KillMatch {
    std::optional<std::uint64_t> call;
    std::optional<std::string> user;
    std::optional<wire::Ipv4Address> client;
  };
  std::size_t kill(const KillMatch& match);

  // Ends calls without GRE (either way) for `idle_seconds` since their set-up or their last
  // packet: Call-Disconnect-Notify "lost carrier" (2.13) to the client, Call-Clear-Request to
  // the server. Returns how many.
  std::size_t end_idle(double idle_seconds);

  const gateway::GatewayCounters& counters() const { return counters_; }
  const LimitCounters& limit_counters() const { return limits_; }
  std::size_t calls() const { return calls_.size(); }
  std::uint64_t idle_ended() const { return idle_ended_; }

 private:
  friend class SessionJudge;
  // What the proxy knows of one admitted call, for judging it again.
  struct Watch {
    track::Call call;  // its id is our Call ID toward the client; `auth` follows its PPP
    std::optional<gateway::CallPolicy> standing;  // under a policy
    const track::ControlConnection* connection = nullptr;
    wire::Ipv4Address source;
    CallCutter cut;
  };
  double now() const;
  bool cut_denied(Watch& w, std::string_view scope);
  void cut_each(const std::vector<std::uint16_t>& ids, std::uint8_t result_code, const std::string& why);

  std::shared_ptr<spdlog::logger> log_;
  gateway::GatewayCounters counters_;
  LimitCounters limits_;
  gateway::LogLimiter refusals_;  // a call refused at the limits: a line per source under a budget
  gateway::PolicyGate gate_;      // its call set-up lines under refusals_' budgets too
  // What one client address holds of the proxy's limits.
  struct SourceHold {
    std::uint32_t calls = 0, connections = 0;
  };
  void release_source(wire::Ipv4Address source, std::uint32_t SourceHold::*what);
  // The proxy's own call limits for a new call from `source` (per source, in all, the fair
  // share); nothing: within them.
  std::optional<Refusal> over_call_limits(wire::Ipv4Address source);

  ProxyLimits limits_in_force_;
  std::uint32_t connections_ = 0;                                // client control connections open
  std::unordered_map<std::uint16_t, Watch> calls_;              // by our Call ID toward the client
  std::unordered_map<std::uint32_t, SourceHold> sources_;       // by client address
  std::uint64_t next_connection_ = 1;
  std::uint64_t idle_ended_ = 0;
};

// One client control connection's judge: what it holds of the limits, given back as its calls
// end and when it goes.
class SessionJudge final : public CallJudge {
 public:
  SessionJudge(ProxyPolicy& owner, const wire::Endpoint& client, const wire::Endpoint& server, std::uint64_t id);
  ~SessionJudge() override;
  SessionJudge(const SessionJudge&) = delete;
  SessionJudge& operator=(const SessionJudge&) = delete;

  void on_cut(CallCutter cut) { cut_ = std::move(cut); }
  std::optional<Refusal> admit_connection() override;
  std::optional<Refusal> admit_call(const ProxyCall& call) override;
  void call_ended(const ProxyCall& call) override;
  void server_refused(ServerRefusal why, std::uint16_t server_call_id) override;

 private:
  bool answers() const;
  ProxyPolicy& owner_;
  track::ControlConnection connection_;  // the policy gate's view: pns = client, pac = server
  std::optional<policy::Charge> charge_;
  CallCutter cut_;
};

}  // namespace pptp::proxy
