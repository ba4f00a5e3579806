#include "proxy/proxy_policy.hpp"

#include <chrono>
#include <vector>

#include "alg/wire/ppp.hpp"

namespace pptp::proxy {

namespace {

// What the client was told, for the log line beside the policy's audit line.
std::string answered(bool answer, std::string_view message) {
  return answer ? std::string(message) : std::string("nothing (on_deny: drop)");
}

}  // namespace

ProxyPolicy::ProxyPolicy(std::shared_ptr<spdlog::logger> log, const ProxyLimits& limits)
    : log_(log), refusals_(log), gate_(std::move(log), {}, counters_, refusals_), limits_in_force_(limits) {}

double ProxyPolicy::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<SessionJudge> ProxyPolicy::judge_for(const wire::Endpoint& client, const wire::Endpoint& server) {
  if (connections_ >= limits_in_force_.connections) {
    ++limits_.connections_refused;
    return nullptr;
  }
  const auto held = sources_.find(client.address.value);
  if (held != sources_.end() && held->second.connections >= limits_in_force_.connections_per_source) {
    ++limits_.source_connections_refused;
    return nullptr;
  }
  return std::make_unique<SessionJudge>(*this, client, server, next_connection_++);
}

// One of what `source` held (a call, a connection) is given back; the address goes when it
// holds nothing.
void ProxyPolicy::release_source(wire::Ipv4Address source, std::uint32_t SourceHold::*what) {
  const auto held = sources_.find(source.value);
  if (held == sources_.end() || held->second.*what == 0) return;
  --(held->second.*what);
  if (held->second.calls == 0 && held->second.connections == 0) sources_.erase(held);
}

// The proxy's own limits: always answered, "busy" (RFC 2637 2.8), policy or not.
std::optional<Refusal> ProxyPolicy::over_call_limits(wire::Ipv4Address source) {
  const auto held = sources_.find(source.value);
  const std::uint32_t holding = held == sources_.end() ? 0 : held->second.calls;
  if (holding >= limits_in_force_.calls_per_source) {
    ++limits_.source_calls_refused;
    return Refusal{true, result::kCallBusy};
  }
  const std::size_t in_all = calls_.size();
  const std::size_t reserve = limits_in_force_.calls / kReservedShare;
  if (in_all >= limits_in_force_.calls || (holding >= kFairShareCalls && in_all + reserve >= limits_in_force_.calls)) {
    ++limits_.calls_refused;
    refusals_.warn_source("proxy_call_refused", source, now(), [&] {
      return "answer=busy calls_held=" + std::to_string(holding) + " calls_in_all=" + std::to_string(in_all) +
             " limit=" + std::to_string(limits_in_force_.calls) + " reserve=" + std::to_string(reserve);
    });
    return Refusal{true, result::kCallBusy};
  }
  return std::nullopt;
}

void ProxyPolicy::set(std::shared_ptr<const policy::Policy> p) {
  const bool reload = gate_.policy() != nullptr;
  gate_.set(std::move(p));
  if (!reload || gate_.policy() == nullptr || gate_.policy()->on_reload != policy::OnReload::Rejudge) return;
  std::vector<std::uint16_t> ids;
  for (const auto& [id, w] : calls_) {
    if (w.standing) ids.push_back(id);
  }
  for (std::uint16_t id : ids) {  // a cut erases its own call only: find each again
    if (auto it = calls_.find(id); it != calls_.end()) cut_denied(it->second, "reload");
  }
}

// Judges the call again; a call now denied is ended at once (CDN to the client, Call-Clear-
// Request to the server), whatever on_deny says: a live call the policy refuses must not
// keep both legs' resources for GRE nobody relays.
bool ProxyPolicy::cut_denied(Watch& w, std::string_view scope) {
  if (!gate_.judge_again(*w.connection, w.call, *w.standing, scope)) return false;
  const std::uint16_t id = static_cast<std::uint16_t>(w.call.id);
  const CallCutter cut = w.cut;  // the cut ends the call: w is gone after it
  log_->warn("proxy_answered scope={} client={} call={} answer=\"Call-Disconnect-Notify result {} to the client, "
             "Call-Clear-Request to the server\"",
             scope, wire::to_string(w.source), id, result::kDisconnectAdminShutdown);
  if (cut) cut(id, result::kDisconnectAdminShutdown, "pptp-alg: not authorized by policy");
  return true;
}

bool ProxyPolicy::on_gre(std::uint16_t pac_call_id, Leg toward, Bytes ppp) {
  const auto it = calls_.find(pac_call_id);
  if (it == calls_.end()) return true;
  Watch& w = it->second;
  // Toward the server is the client's (PNS's) GRE: RFC 2637's PNS-to-PAC direction.
  const track::Direction dir = toward == Leg::Server ? track::Direction::PnsToPac : track::Direction::PacToPns;
  track::GreFlowStats& flow = w.call.gre[static_cast<std::size_t>(dir)];
  ++flow.packets;
  w.call.last_activity = now();
  flow.payload_bytes += ppp.size();
  if (!w.standing) return true;
  std::optional<track::PppFrameClass> frame_class;
  const char* scope = nullptr;
  if (auto frame = wire::parse_ppp_frame(ppp); frame && !ppp.empty()) {
    track::AuthStep step = w.call.auth.on_frame(dir, *frame);
    frame_class = step.frame_class;
    const auto& name = step.event.name;
    if (step.event.kind == track::AuthEventKind::Accepted && name && (!w.call.user || w.call.user->name != name->name)) {
      w.call.user = name;  // the name the server accepted (or a new one on re-authentication)
      scope = "call_user";
    }
  }
  if (scope == nullptr && w.standing->outcome == policy::Outcome::Pending && gate_.name_final(w.call)) {
    scope = "call_authentication";  // the name had its chance (docs/policy.md)
  }
  if (scope != nullptr && cut_denied(w, scope)) return false;
  if (w.standing->outcome == policy::Outcome::Pending && frame_class == track::PppFrameClass::NetworkLayer) {
    ++counters_.gre_before_user;  // RFC 1661 3.5: only link control and authentication until decided
    return false;
  }
  return true;
}

bool ProxyPolicy::ready_for_kernel(std::uint16_t pac_call_id) const {
  const auto it = calls_.find(pac_call_id);
  if (it == calls_.end()) return false;
  const Watch& w = it->second;
  if (w.standing && w.standing->outcome != policy::Outcome::Allow) return false;
  return w.call.user || w.call.gre[0].packets + w.call.gre[1].packets >= track::kAuthScanPackets;
}

void ProxyPolicy::on_kernel_gre(std::uint16_t pac_call_id, std::uint64_t to_server, std::uint64_t to_client) {
  const auto it = calls_.find(pac_call_id);
  if (it == calls_.end() || to_server + to_client == 0) return;
  track::Call& c = it->second.call;
  c.gre[static_cast<std::size_t>(track::Direction::PnsToPac)].packets += to_server;
  c.gre[static_cast<std::size_t>(track::Direction::PacToPns)].packets += to_client;
  c.last_activity = now();
}

const track::Call* ProxyPolicy::call(std::uint16_t pac_call_id) const {
  const auto it = calls_.find(pac_call_id);
  return it == calls_.end() ? nullptr : &it->second.call;
}

std::size_t ProxyPolicy::kill(const KillMatch& match) {
  std::vector<std::uint16_t> ids;
  for (const auto& [id, w] : calls_) {
    const bool hit = (match.call && *match.call == id) || (match.client && *match.client == w.source) ||
                     (match.user && w.call.user && w.call.user->name == *match.user);
    if (hit && w.cut) ids.push_back(id);
  }
  cut_each(ids, result::kDisconnectAdminShutdown, "pptp-alg: ended by the operator");
  return ids.size();
}

std::size_t ProxyPolicy::end_idle(double idle_seconds) {
  const double t = now();
  std::vector<std::uint16_t> ids;
  for (const auto& [id, w] : calls_) {
    if (w.cut && t - w.call.last_activity >= idle_seconds) ids.push_back(id);
  }
  for (std::uint16_t id : ids) log_->info("proxy_call_idle call={} idle_timeout={}", id, idle_seconds);
  cut_each(ids, result::kDisconnectLostCarrier, "pptp-alg: no GRE for " + std::to_string(static_cast<int>(idle_seconds)) + " s");
  idle_ended_ += ids.size();
  return ids.size();
}

void ProxyPolicy::cut_each(const std::vector<std::uint16_t>& ids, std::uint8_t result_code, const std::string& why) {
  for (std::uint16_t id : ids) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    const CallCutter cut = it->second.cut;  // the cut ends the call: the entry goes with it
    cut(id, result_code, why);
  }
}

SessionJudge::SessionJudge(ProxyPolicy& owner, const wire::Endpoint& client, const wire::Endpoint& server,
                           std::uint64_t id)
    : owner_(owner) {
  connection_.id = id;
  connection_.pns = client;
  connection_.pac = server;
  connection_.opener = client.address;
  ++owner_.connections_;
  ++owner_.sources_[client.address.value].connections;
}

SessionJudge::~SessionJudge() {
  if (charge_) owner_.gate_.release_connection(*charge_);
  --owner_.connections_;
  owner_.release_source(connection_.pns.address, &ProxyPolicy::SourceHold::connections);
}

bool SessionJudge::answers() const {
  const policy::Policy* p = owner_.gate_.policy();
  return p != nullptr && p->on_deny == policy::OnDeny::Refuse;
}

std::optional<Refusal> SessionJudge::admit_connection() {
  if (owner_.gate_.policy() == nullptr) return std::nullopt;
  charge_ = owner_.gate_.admit_connection(connection_.pns, connection_.pac, owner_.now());
  if (charge_) return std::nullopt;
  owner_.log_->warn("proxy_answered scope=connection client={} server={} answer=\"{}\"",
                    wire::to_string(connection_.pns.address), wire::to_string(connection_.pac.address),
                    answered(answers(), "Start-Control-Connection-Reply result 4 (not authorized)"));
  return Refusal{answers(), result::kStartNotAuthorized};
}

std::optional<Refusal> SessionJudge::admit_call(const ProxyCall& call) {
  const wire::Ipv4Address source = connection_.pns.address;
  if (auto refusal = owner_.over_call_limits(source)) return refusal;
  ProxyPolicy::Watch w;
  w.call.id = call.pac_call_id;
  w.call.origin = call.client_known ? track::CallOrigin::Outgoing : track::CallOrigin::Incoming;
  if (call.client_known) w.call.pns_call_id = call.client_call_id;
  w.call.pac_call_id = call.server_call_id;
  if (owner_.gate_.policy() != nullptr) {
    w.standing = owner_.gate_.admit_call(connection_, w.call, owner_.now());
    if (!w.standing) {
      owner_.log_->warn("proxy_answered scope=call client={} server={} client_call_id={} answer=\"{}\"",
                        wire::to_string(source), wire::to_string(connection_.pac.address), call.client_call_id,
                        answered(answers(), call.client_known ? "Outgoing-Call-Reply result 7 (do not accept)"
                                                              : "Incoming-Call-Reply result 3 to the server"));
      return Refusal{answers(), result::kCallDoNotAccept};
    }
  }
  w.connection = &connection_;
  w.call.opened_at = w.call.last_activity = owner_.now();
  w.source = source;
  w.cut = cut_;
  owner_.calls_.insert_or_assign(call.pac_call_id, std::move(w));
  ++owner_.sources_[source.value].calls;
  return std::nullopt;
}

void SessionJudge::call_ended(const ProxyCall& call) {
  const auto it = owner_.calls_.find(call.pac_call_id);
  if (it == owner_.calls_.end()) return;
  if (it->second.standing) owner_.gate_.release_call(*it->second.standing);
  owner_.calls_.erase(it);
  owner_.release_source(connection_.pns.address, &ProxyPolicy::SourceHold::calls);
}

// The server is the one to name: it places calls the client does not answer, or numbers a
// call as another proxied call to it (relay_incoming.cpp, relay.cpp); the client is the one
// whose call was refused.
void SessionJudge::server_refused(ServerRefusal why, std::uint16_t server_call_id) {
  const bool taken = why == ServerRefusal::CallIdTaken;
  const std::string_view kind = taken ? "proxy_server_call_id_taken" : "proxy_incoming_refused";
  owner_.refusals_.warn_source(kind, connection_.pac.address, owner_.now(), [&] {
    const std::string head =
        "client=" + wire::to_string(connection_.pns.address) + " server_call_id=" + std::to_string(server_call_id);
    if (taken) return head + " reason=\"another proxied call to this server has it\"";
    return head + " answer=\"Incoming-Call-Reply result 3 (do not accept)\" unanswered=" +
           std::to_string(kMaxUnansweredIncomingCalls);
  });
}

}  // namespace pptp::proxy
