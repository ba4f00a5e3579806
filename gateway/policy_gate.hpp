// The per-user policy at the gateway (docs/policy.md): judges new control connections and
// call set-ups by address, live calls again by their PPP name and on reload, charges the
// limits, and writes one audit line per decision. Without a policy everything is allowed
// and nothing is charged.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/logger.h>

#include "gateway/counters.hpp"
#include "gateway/log_limiter.hpp"
#include "gateway/records.hpp"
#include "policy/admission.hpp"
#include "policy/policy.hpp"

namespace pptp::gateway {

// A denied connection's SYN retransmissions are judged each time but logged once a minute.
inline constexpr double kDeniedLogInterval = 60.0;
inline constexpr std::size_t kMaxDeniedRemembered = 4096;

class PolicyGate {
 public:
  PolicyGate(std::shared_ptr<spdlog::logger> log, std::function<policy::WallTime()> wall_clock,
             GatewayCounters& counters, LogLimiter& lines)
      : log_(std::move(log)), wall_clock_(std::move(wall_clock)), counters_(counters), lines_(lines) {}

  void set(std::shared_ptr<const policy::Policy> p) { policy_ = std::move(p); }
  const policy::Policy* policy() const { return policy_.get(); }
  const policy::Admission& admission() const { return admission_; }

  // A new control connection: what it is charged if admitted; nothing if denied.
  std::optional<policy::Charge> admit_connection(const wire::Endpoint& pns, const wire::Endpoint& pac, double now);
  void release_connection(const policy::Charge& charge) { admission_.release_connection(charge); }
  // A new call set-up on `c`: its standing if admitted; nothing if denied.
  std::optional<CallPolicy> admit_call(const track::ControlConnection& c, const track::Call& call, double now);
  void release_call(const CallPolicy& cp) { admission_.release_call(cp.charge); }
  // Judges a live call again (its PPP name, a reload). True when this decision denies it.
  bool judge_again(const track::ControlConnection& c, const track::Call& call, CallPolicy& cp,
                   std::string_view scope);
  // The call's GRE has run long enough for a name to have been seen (or not).
  bool name_final(const track::Call& call) const;

 private:
  // A decision for a new connection or call: the rule's, or a limit's deny.
  struct Judgement {
    policy::Decision decision;
    policy::Charge who;
    policy::Outcome outcome;
    std::string reason;
  };
  template <typename Limit>
  Judgement judge_new(wire::Ipv4Address pns, wire::Ipv4Address pac, Limit&& limit) const;
  policy::WallTime wall_time() const;
  void audit(std::string_view scope, policy::Outcome outcome, const std::string& rule, const policy::Charge& who,
             const std::string& name, const std::string& reason, const std::string& where);

  std::shared_ptr<spdlog::logger> log_;
  std::function<policy::WallTime()> wall_clock_;
  GatewayCounters& counters_;
  LogLimiter& lines_;  // the gateway's: a call set-up's decision has a line budget per client
  std::shared_ptr<const policy::Policy> policy_;
  policy::Admission admission_;
  // (client, server) addresses -> when; not ports: each SYN from a new port is a new
  // connection, and one line per SYN was a disk-filling flood (s33 review).
  std::map<std::pair<wire::Ipv4Address, wire::Ipv4Address>, double> denied_logged_;
};

}  // namespace pptp::gateway
