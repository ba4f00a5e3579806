#include "gateway/policy_gate.hpp"

#include <ctime>

#include "gateway/describe.hpp"

namespace pptp::gateway {

using wire::to_string;

policy::WallTime PolicyGate::wall_time() const {
  if (wall_clock_) return wall_clock_();
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  return policy::WallTime{static_cast<std::uint8_t>((local.tm_wday + 6) % 7),
                          static_cast<std::uint16_t>(local.tm_hour * 60 + local.tm_min)};
}

void PolicyGate::audit(std::string_view scope, policy::Outcome outcome, const std::string& rule,
                       const policy::Charge& who, const std::string& name, const std::string& reason,
                       const std::string& where) {
  // One line per decision: who, to where, which rule or limit, and what happened.
  const auto line = fmt::format("policy_decision scope={} verdict={} rule=\"{}\" user={} source={} server={} "
                                "ppp_name=\"{}\" reason=\"{}\" {}",
                                scope, policy::name_of(outcome), rule, who.user.empty() ? "-" : who.user,
                                to_string(who.source), to_string(who.server), name, reason, where);
  if (outcome == policy::Outcome::Deny) {
    log_->warn("{}", line);
  } else {
    log_->info("{}", line);
  }
}

template <typename Limit>
PolicyGate::Judgement PolicyGate::judge_new(wire::Ipv4Address pns, wire::Ipv4Address pac, Limit&& limit) const {
  // The rules first (by address: no PPP name yet), then the limits of whom they name.
  const policy::Decision d = policy::decide(*policy_, policy::Subject{pns, pac, std::nullopt, false}, wall_time());
  Judgement j{d, policy::Charge{pns, d.user ? policy_->users[*d.user].name : std::string(), pac}, d.outcome, d.reason};
  if (j.outcome != policy::Outcome::Deny) {
    if (auto hit = limit(j.who, d.user)) {
      j.outcome = policy::Outcome::Deny;
      j.reason = "limit " + *hit;
    }
  }
  return j;
}

std::optional<policy::Charge> PolicyGate::admit_connection(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                           double now) {
  auto [d, who, outcome, reason] = judge_new(pns.address, pac.address, [&](const policy::Charge& w, auto user) {
    return admission_.admit_connection(*policy_, w, user);
  });
  const std::string where = fmt::format("pns={} pac={}", to_string(pns), to_string(pac));
  if (outcome != policy::Outcome::Deny) {
    audit("connection", outcome, policy::rule_name(*policy_, d.rule), who, "", reason, where);
    return who;
  }
  ++counters_.connections_denied;
  // Retransmitted SYNs, and new connections from other ports, are judged each time and
  // logged once a minute per client and server.
  const auto key = std::make_pair(pns.address, pac.address);
  const auto seen = denied_logged_.find(key);
  if (seen == denied_logged_.end() || now - seen->second >= kDeniedLogInterval) {
    if (denied_logged_.size() >= kMaxDeniedRemembered) denied_logged_.clear();
    denied_logged_[key] = now;
    audit("connection", outcome, policy::rule_name(*policy_, d.rule), who, "", reason, where);
  }
  return std::nullopt;
}

std::optional<CallPolicy> PolicyGate::admit_call(const track::ControlConnection& c, const track::Call& call,
                                                 double now) {
  // A named result, not structured bindings: clang 14 (C++20) cannot capture those in a lambda.
  Judgement j = judge_new(c.pns.address, c.pac.address, [&](const policy::Charge& w, auto user) {
    return admission_.admit_call(*policy_, w, user, now);
  });
  // A client with a server that refuses every call sets calls up as fast as it likes: 227 MB
  // of these lines in 10 s before they had a budget (s35 second review, N2); counted past it.
  lines_.limit_call("policy_decision", c.pns.address, now, [&] {
    audit("call", j.outcome, policy::rule_name(*policy_, j.decision.rule), j.who, "", j.reason,
          fmt::format("{} {}", describe(c), call_ids(call)));
  });
  if (j.outcome == policy::Outcome::Deny) {
    ++counters_.calls_denied;
    return std::nullopt;
  }
  return CallPolicy{j.outcome, policy::rule_name(*policy_, j.decision.rule), std::move(j.who)};
}

bool PolicyGate::name_final(const track::Call& call) const {
  return policy_ && call.gre[0].packets + call.gre[1].packets >= policy_->authentication_packets;
}

bool PolicyGate::judge_again(const track::ControlConnection& c, const track::Call& call, CallPolicy& cp,
                             std::string_view scope) {
  if (!policy_ || cp.outcome == policy::Outcome::Deny) return false;
  policy::Subject s{c.pns.address, c.pac.address, std::nullopt, false};
  if (call.user) s.name = call.user->name;
  s.name_final = name_final(call);
  const policy::Decision d = policy::decide(*policy_, s, wall_time());
  std::string reason = d.reason;
  policy::Outcome outcome = d.outcome;
  // The name tells who the call belongs to: count it against that user's limit.
  if (outcome != policy::Outcome::Deny && d.user) {
    if (auto hit = admission_.move_call(*policy_, cp.charge, *d.user)) {
      outcome = policy::Outcome::Deny;
      reason = "limit " + *hit;
    }
  }
  if (outcome == cp.outcome && cp.rule == policy::rule_name(*policy_, d.rule) && scope == "reload") return false;
  cp.outcome = outcome;
  cp.rule = policy::rule_name(*policy_, d.rule);
  if (outcome == policy::Outcome::Deny) ++counters_.calls_cut;
  audit(scope, outcome, cp.rule, cp.charge, s.name ? printable_name(*s.name) : std::string(), reason,
        fmt::format("{} {}", describe(c), call_ids(call)));
  return outcome == policy::Outcome::Deny;
}

}  // namespace pptp::gateway
