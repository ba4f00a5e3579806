// The operator's requests (control_api.hpp): `pptp-alg ctl kill`; an HA node letting go of a
// connection its peer carries.
#include <algorithm>

#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"

namespace pptp::gateway {

bool Gateway::killed(std::uint64_t connection_id) const {
  const ConnectionRecord* r = connection_record(connection_id);
  return r != nullptr && r->killed;
}

KillResult Gateway::kill_calls(const KillRequest& which, double now) {
  packet_ = PacketContext{now, std::nullopt};
  KillResult result;
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    if (c.state == track::ConnectionState::Closed || killed(c.id)) return;
    const bool any = std::any_of(c.calls.begin(), c.calls.end(), [&](const auto& call) {
      return which.selects(call->id, call->user ? &call->user->name : nullptr, c.pns.address);
    });
    if (any) kill_connection(c, result);
  });
  kill_taken_over(which, result);
  kill_adopted(which, result);
  return result;
}

void Gateway::kill_connection(const track::ControlConnection& c, KillResult& result, bool line_per_call) {
  record_of(c).killed = true;  // its segments are dropped from now on
  ++result.connections;
  for (const auto& call : c.calls) {
    ++result.calls;
    // Its GRE comes back to the queue, where it is dropped.
    if (auto it = calls_.find(call->id); it != calls_.end()) offloader_.withdraw(it->second);
    if (line_per_call) log_->warn("call_killed {} {} reason=\"operator request\"", describe(c), call_ids(*call));
  }
}

// After an HA promotion the calls taken over are the HA node's, not the tracker's: without
// this, a user's tunnel carried on by the new node could not be ended by name or client.
void Gateway::kill_taken_over(const KillRequest& which, KillResult& result) {
  if (call_observer_ == nullptr) return;
  for (const TakenOverKill& k : call_observer_->kill_taken_over(which)) {
    if (!offloader_.end_adopted(k.call, "operator request", translator_)) continue;
    ++result.calls;
    log_->warn("call_killed client={} server={} outside_call_id={} taken_over=true reason=\"operator request\"",
               wire::to_string(k.pns), wire::to_string(k.pac), k.call.outside_call_id);
    const track::ControlConnection* c = tracker_.find_connection(k.pns, k.pac);
    if (c != nullptr && c->state != track::ConnectionState::Closed && !killed(c->id)) kill_connection(*c, result);
  }
}

// Calls adopted at a restart (--keep-fast-path) have neither a tracker id nor a user here:
// only the client selects them.
void Gateway::kill_adopted(const KillRequest& which, KillResult& result) {
  for (const OffloadedCall& call : offloader_.adopted_calls()) {
    if (!which.selects(std::nullopt, nullptr, call.inside)) continue;
    if (!offloader_.end_adopted(call, "operator request", translator_)) continue;
    ++result.calls;
    log_->warn("call_killed inside={} server={} outside_call_id={} adopted=true reason=\"operator request\"",
               wire::to_string(call.inside), wire::to_string(call.server), call.outside_call_id);
  }
}

std::optional<std::size_t> Gateway::release_connection(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                       double now) {
  packet_ = PacketContext{now, std::nullopt};
  const track::ControlConnection* c = tracker_.find_connection(pns, pac);
  if (c == nullptr || c->state == track::ConnectionState::Closed) return std::nullopt;
  const std::size_t calls = c->calls.size();
  tracker_.release_connection(now, pns, pac, "released: the HA peer carries it");
  return calls;
}

}  // namespace pptp::gateway
