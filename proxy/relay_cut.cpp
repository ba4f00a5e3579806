// What the proxy answers itself instead of relaying: calls its judge refuses (the policy,
// the limits) and live calls it ends (a re-judged policy, the operator). Each gets a real
// RFC 2637 answer, which a transparent gateway cannot give inside a stream it forwards.
#include <algorithm>
#include <string>

#include "proxy/relay.hpp"
#include "proxy/relay_messages.hpp"

namespace pptp::proxy {

using namespace relay_detail;

// Asked once the call's Call IDs are allocated; a refused call gives them back at once and
// the server never hears of it.
std::optional<RelayOutput> Relay::judge_refused(const ProxyCall& call, bool incoming) {
  const auto refusal = judge_ != nullptr ? judge_->admit_call(call) : std::nullopt;
  if (!refusal) return std::nullopt;
  book_.release(call.pac_call_id);
  book_.release(call.pns_call_id);
  ++counters_.calls_refused;
  if (!refusal->answer) return RelayOutput{};
  if (incoming) {
    // Incoming-Call-Reply (2.10) has one refusal, "do not accept".
    wire::IncomingCallReply r;
    r.peer_call_id = *call.server_call_id;
    r.result_code = result::kIncomingDoNotAccept;
    return one(Leg::Server, r);
  }
  return one(Leg::Client, refused_call(call.client_call_id, refusal->result_code));
}

// RFC 2637 2.12/2.13: the PNS clears a call with Call-Clear-Request (the server then owes us
// a Call-Disconnect-Notify); toward the client we are the PAC, so we tell it with
// Call-Disconnect-Notify, whose Call Statistics field carries the reason in words.
RelayOutput Relay::cut_call(std::uint16_t pac_call_id, std::uint8_t result_code, std::string_view why) {
  ProxyCall* call = find_call(pac_call_id, &ProxyCall::pac_call_id);
  if (call == nullptr) return {};
  RelayOutput out;
  disconnect_client(out, *call, result_code, why);
  clear_at_server(out, *call);
  ++counters_.calls_cut;
  end_call(call);
  return out;
}

// Call-Disconnect-Notify toward the client (we are its PAC): our Call ID, the reason in words.
void Relay::disconnect_client(RelayOutput& out, const ProxyCall& call, std::uint8_t result_code,
                              std::string_view why) {
  wire::CallDisconnectNotify cdn;
  cdn.call_id = call.pac_call_id;
  cdn.result_code = result_code;
  cdn.call_statistics = wire::CallStatistics::from_text(why);
  out.sends.push_back(to(Leg::Client, cdn));
}

// Call-Clear-Request toward the server; its Call-Disconnect-Notify is then expected.
void Relay::clear_at_server(RelayOutput& out, const ProxyCall& call) {
  wire::CallClearRequest clear;
  clear.call_id = call.pns_call_id;
  out.sends.push_back(to(Leg::Server, clear));
  if (clearing_.size() >= kMaxCallsPerConnection) clearing_.erase(clearing_.begin());
  clearing_.emplace_back(call.pns_call_id, call.server_call_id);
}

// Ends the connection: each call toward the client, an outgoing one still waiting for the
// server with an Outgoing-Call-Reply "general error" (2.8: the client knows no Call ID of ours
// for it yet), the others with Call-Disconnect-Notify (2.13); then the control connection on
// both legs (2.3: the server ends its calls with it). A relay already closed sends nothing more.
RelayOutput Relay::cut_connection(std::string_view why) {
  RelayOutput out;
  if (state_ != RelayState::Closed) {
    for (const ProxyCall& call : calls_) {
      if (call.client_known && !call.server_call_id) {
        out.sends.push_back(to(Leg::Client, refused_call(call.client_call_id, result::kCallGeneralError)));
      } else {
        disconnect_client(out, call, result::kDisconnectAdminShutdown, why);
      }
    }
    wire::StopControlConnectionRequest stop;
    stop.reason = result::kStopGeneral;
    if (state_ == RelayState::Established) out.sends.push_back(to(Leg::Client, stop));
    if (state_ == RelayState::StartingServer || state_ == RelayState::Established) out.sends.push_back(to(Leg::Server, stop));
    out.close_client = out.close_server = true;
    state_ = RelayState::Closed;
  }
  end_all_calls();
  return out;
}

// Poptop gives a control connection's calls the Call IDs of the next connection's range once
// it has made more than 128 (s35 review F0): a holder whose call ran past its range
// (gateway::holder_ran_past_its_range) is cut, as the transparent gateway cuts it
// (Gateway::may_name_pac_call_id; before, s36 review R2, the first holder kept the ID and the
// next client's call failed). Otherwise, a duplicate within one connection, or a holder
// without a session to cut it (tests), the new call is refused.
Relay::Claim Relay::server_call_id_claim(std::uint16_t server_call_id, std::uint16_t ordinal) const {
  const CallBook::ServerCallHolder* h = book_.server_call_id_holder(server_, server_call_id);
  if (h == nullptr) return Claim::Free;
  if (h->relay == this || h->relay->cutter_ == nullptr) return Claim::Refused;
  return gateway::holder_ran_past_its_range(h->ordinal, ordinal) ? Claim::CutsHolder : Claim::Refused;
}

bool Relay::claim_server_call_id(std::uint16_t server_call_id, std::uint16_t pns_call_id, std::uint16_t ordinal) {
  const Claim claim = server_call_id_claim(server_call_id, ordinal);
  if (claim == Claim::Refused) return false;
  if (claim == Claim::CutsHolder) {
    ++counters_.connections_cut_server_call_id;
    // Its calls end at once (end_call), the holder's with them: the ID is free below.
    book_.server_call_id_holder(server_, server_call_id)->relay->cutter_->cut_connection(
        "pptp-alg: the server gave Call ID " + std::to_string(server_call_id) +
        ", past its range for this connection, to another connection's call");
  }
  book_.hold_server_call_id(server_, server_call_id, CallBook::ServerCallHolder{pns_call_id, this, ordinal});
  return true;
}

// An outgoing call waits for the server's Outgoing-Call-Reply, an incoming one for the
// client's Incoming-Call-Reply; a hostile server's incoming calls that the client ignores
// would otherwise count against the client's limits until the idle timeout (s30 review).
RelayOutput Relay::age_unanswered() {
  RelayOutput out;
  std::vector<std::uint16_t> expired;
  for (ProxyCall& c : calls_) {
    const bool waiting = c.client_known ? !c.server_call_id : true;
    if (waiting && ++c.unanswered_ticks >= kAnswerTicks) expired.push_back(c.pac_call_id);
  }
  for (std::uint16_t id : expired) {
    ProxyCall* call = find_call(id, &ProxyCall::pac_call_id);
    if (call->client_known) {  // 2.8 toward the client, 2.12 toward the server
      out.sends.push_back(to(Leg::Client, refused_call(call->client_call_id, result::kCallTimeout)));
      clear_at_server(out, *call);
    } else {  // 2.13 toward the client (it was offered the call by us, its PAC), 2.10 toward the server
      disconnect_client(out, *call, result::kDisconnectGeneralError, "pptp-alg: not answered within 60 s");
      wire::IncomingCallReply refusal;
      refusal.peer_call_id = *call->server_call_id;
      refusal.result_code = result::kIncomingDoNotAccept;
      out.sends.push_back(to(Leg::Server, refusal));
    }
    ++counters_.calls_timed_out;
    end_call(call);
  }
  return out;
}

bool Relay::clearing(std::uint16_t pns_call_id) const {
  return std::any_of(clearing_.begin(), clearing_.end(), [&](const auto& c) { return c.first == pns_call_id; });
}

// The server's Call-Disconnect-Notify for a call we cut: expected, consumed once.
bool Relay::was_cut(std::uint16_t server_says) {
  const auto it = std::find_if(clearing_.begin(), clearing_.end(), [&](const auto& c) {
    return c.first == server_says || c.second == server_says;
  });
  if (it == clearing_.end()) return false;
  clearing_.erase(it);
  return true;
}

}  // namespace pptp::proxy
