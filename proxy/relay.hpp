// One relayed PPTP control connection (RFC 2637 section 2), both legs, without I/O.
//
// Toward the client pptp-alg is the PAC, toward the server it is the PNS. Start-Control-
// Connection and Echo are answered on each leg by the proxy itself; call messages are
// relayed with each leg's own Call IDs, which the proxy allocates from the shared CallBook
// (so they never collide); the calls' GRE routes are written there once a call is up.
// Every input returns what to send on which leg and whether a leg is to be closed (after
// what was queued for it has been written): the session (proxy_server.cpp) does the I/O.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "alg/core/counter_list.hpp"
#include "alg/wire/control_message.hpp"
#include "alg/wire/ip.hpp"
#include "proxy/call_book.hpp"

namespace pptp::proxy {

inline constexpr std::size_t kMaxCallsPerConnection = 256;  // beyond: Outgoing-Call-Reply "busy"
// Incoming calls (2.9) the client has not answered yet, per control connection: beyond, the
// server is told "do not accept" (2.10) by the proxy itself, and the client never hears of
// the call (the transparent gateway, which cannot answer for the client, allows more:
// track::kMaxUnansweredIncomingCalls). Each such call counts against the client's address in
// the limits until answered or aged out (kAnswerTicks): a hostile server could otherwise
// hold 256 of them per connection of a client, again and again (s30 review).
inline constexpr std::size_t kMaxUnansweredIncomingCalls = 8;
// A call not answered after this many calls of Relay::age_unanswered (one per keepalive tick
// of 5 s: 55 to 60 s) is ended: an Outgoing-Call-Request the server left unanswered, an
// Incoming-Call-Request the client did. RFC 2637 sets no limit; without one a peer that never
// answers holds the call's Call IDs and its place in the limits until the idle timeout.
inline constexpr std::uint8_t kAnswerTicks = 12;
inline constexpr std::string_view kProxyHostName = "pptp-alg";

// RFC 2637 result codes the proxy itself answers with.
namespace result {
inline constexpr std::uint8_t kStartOk = 1;           // SCCRP 2.2
inline constexpr std::uint8_t kStartGeneralError = 2;
inline constexpr std::uint8_t kEchoOk = 1;            // Echo-Reply 2.6
inline constexpr std::uint8_t kStopOk = 1;            // StopCCRP 2.4
inline constexpr std::uint8_t kStopGeneral = 1;       // StopCCRQ reason 2.3: "General request"
inline constexpr std::uint8_t kCallConnected = 1;     // OCRP 2.8
inline constexpr std::uint8_t kCallGeneralError = 2;
inline constexpr std::uint8_t kCallBusy = 4;
inline constexpr std::uint8_t kCallTimeout = 6;       // OCRP 2.8: "not established within time allotted"
inline constexpr std::uint8_t kCallDoNotAccept = 7;     // OCRP 2.8: refused by policy
inline constexpr std::uint8_t kStartNotAuthorized = 4;  // SCCRP 2.2: "requester not authorized"
inline constexpr std::uint8_t kDisconnectAdminShutdown = 3;  // CDN 2.13: cut by policy or operator
inline constexpr std::uint8_t kIncomingDoNotAccept = 3;  // ICRP 2.10
inline constexpr std::uint8_t kDisconnectLostCarrier = 1;  // CDN 2.13
inline constexpr std::uint8_t kDisconnectGeneralError = 2;
}  // namespace result

#define PPTP_RELAY_COUNTERS(X)                                                                      \
  X(connections, "connections", "client control connections relayed")                              \
  X(calls_placed, "calls_placed", "Outgoing-Call-Requests relayed to a server")                     \
  X(calls_connected, "calls_connected", "calls the server connected (both legs up)")                \
  X(calls_ended, "calls_ended", "calls cleared (either side) or refused")                           \
  X(messages_relayed, "messages_relayed", "call messages relayed between legs")                     \
  X(echoes_answered, "echoes_answered", "Echo-Requests answered (either leg)")                      \
  X(incoming_placed, "incoming_placed", "Incoming-Call-Requests relayed to a client")              \
  X(incoming_refused, "incoming_refused", "Incoming-Call-Requests refused (no Call ID, too many)")  \
  X(incoming_unanswered_refused, "incoming_unanswered_refused",                                     \
    "Incoming-Call-Requests refused: the client had kMaxUnansweredIncomingCalls unanswered")              \
  X(server_call_id_taken, "server_call_id_taken",                                                   \
    "calls the server gave a Call ID another proxied call to it has: refused (OCRP 2 to the client " \
    "and Call-Clear-Request, or ICRP 3 to the server)")                                              \
  X(connections_cut_server_call_id, "connections_cut_server_call_id",                               \
    "control connections cut: a server gave the Call ID of one of their calls, past its range, to " \
    "another connection's call (CDN to the client, Stop-Control-Connection-Request to both)")      \
  X(unknown_call, "unknown_call", "a message naming a Call ID of no call on its leg (ignored)")     \
  X(wrong_sender, "wrong_sender", "a message the sending leg may not send, or not now (ignored)")   \
  X(call_ids_exhausted, "call_ids_exhausted", "no free Call ID: the call was refused as busy")       \
  X(connections_refused, "connections_refused", "client starts refused (policy, limit): SCCRP 4 or silence") \
  X(calls_refused, "calls_refused", "calls refused by the judge (policy, limit): OCRP 4/7, ICRP 3 or silence") \
  X(calls_cut, "calls_cut", "live calls the proxy ended: CDN to the client, Call-Clear-Request to the server") \
  X(calls_timed_out, "calls_timed_out",                                                             \
    "calls left unanswered for about 60 s: an outgoing one by the server (OCRP 6 to the client, "    \
    "Call-Clear-Request to the server), an incoming one by the client (CDN, ICRP 3 to the server)")                                                                                    \
  X(legs_no_echo_reply, "legs_no_echo_reply",                                                       \
    "legs ended: the peer's TCP took our Echo-Request and no message came for 60 s (RFC 2637 2.5)")  \
  X(legs_link_down, "legs_link_down",                                                               \
    "legs ended: the peer's TCP did not take our Echo-Request, not even resent after 60 s")         \
  X(legs_not_reading, "legs_not_reading", "legs ended: the peer did not read what was queued for it")

struct RelayCounters {
  PPTP_RELAY_COUNTERS(PPTP_COUNTER_FIELD)
};

template <class F>
void visit_relay_counters(const RelayCounters& c, F&& f) {
  PPTP_RELAY_COUNTERS(PPTP_COUNTER_VISIT)
}

struct Send {
  Leg leg = Leg::Client;
  wire::ControlMessage message;
};

struct RelayOutput {
  std::vector<Send> sends;
  bool open_server = false;   // connect the server leg (the client asked to start)
  bool close_client = false;  // once its queued messages are written
  bool close_server = false;
};

// One call: four Call IDs, two of them the proxy's.
struct ProxyCall {
  std::uint16_t client_call_id = 0;  // the client's (PNS) own: the Key of GRE toward it
                                     // (an incoming call's: once the client has answered)
  std::uint16_t pac_call_id = 0;     // ours toward the client: the Key of the client's GRE
  std::uint16_t pns_call_id = 0;     // ours toward the server: the Key of the server's GRE
  std::optional<std::uint16_t> server_call_id;  // the server's, from its Outgoing-Call-Reply
                                                // or Incoming-Call-Request
  bool client_known = true;  // false: an incoming call the client has not answered yet
  std::uint8_t unanswered_ticks = 0;  // a call not yet answered (either way): its age
  // Outgoing-Call-Requests this connection sent the server before this call
  // (gateway::holder_ran_past_its_range; at most 65535).
  std::uint16_t ordinal = 0;
};

// A start or call the judge refuses: answered with a result code (on_deny: refuse, and the
// proxy's own limits), or not at all (on_deny: drop: the peer times out, as through the
// transparent gateway).
struct Refusal {
  bool answer = true;
  std::uint8_t result_code = 0;  // for a call: result::kCallDoNotAccept or kCallBusy
};

// What the relay refused of a server: an incoming call past kMaxUnansweredIncomingCalls
// (Incoming-Call-Reply "do not accept"), or a Call ID another proxied call to it holds
// (CallBook), given to a call it answered or placed.
enum class ServerRefusal : std::uint8_t { IncomingUnanswered, CallIdTaken };

// Who may start a control connection and place calls (the policy and the limits:
// proxy_policy.hpp). Asked by the relay before anything reaches the server.
class CallJudge {
 public:
  virtual ~CallJudge() = default;
  virtual std::optional<Refusal> admit_connection() = 0;
  // The call's Call IDs are allocated; nothing: admitted (and charged until call_ended).
  virtual std::optional<Refusal> admit_call(const ProxyCall& call) = 0;
  virtual void call_ended(const ProxyCall& call) = 0;
  // The relay refused what the server did with one of its Call IDs (counted by the relay); the
  // judge logs it under its budget, naming the server and the client (s32, s36 review R3:
  // before, counters and no line).
  virtual void server_refused(ServerRefusal why, std::uint16_t server_call_id) = 0;
};

// Does the I/O of a relay's cut decided outside its own input (Relay::claim_server_call_id):
// the session applies Relay::cut_connection's output to its legs.
class ConnectionCutter {
 public:
  virtual ~ConnectionCutter() = default;
  virtual void cut_connection(std::string_view why) = 0;
};

enum class RelayState : std::uint8_t { Idle, StartingServer, Established, Stopping, Closed };

class Relay {
 public:
  // client, server: the peers' addresses (the server's is the client's original destination).
  // judge: nothing admits everything.
  Relay(CallBook& book, RelayCounters& counters, wire::Ipv4Address client, wire::Ipv4Address server,
        CallJudge* judge = nullptr);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  RelayOutput on_client(const wire::ControlMessage& message);
  RelayOutput on_server(const wire::ControlMessage& message);
  // The leg's TCP connection ended or failed (or could not be opened).
  RelayOutput on_closed(Leg leg);
  // Ends a live call from here (policy, operator: relay_cut.cpp): Call-Disconnect-Notify with
  // `result_code` and `why` as its Call Statistics to the client, Call-Clear-Request to the
  // server. pac_call_id: our Call ID toward the client. Nothing when no such call.
  RelayOutput cut_call(std::uint16_t pac_call_id, std::uint8_t result_code, std::string_view why);
  // Ends the whole control connection from here: Call-Disconnect-Notify (admin shutdown, `why`
  // as its Call Statistics) for each call toward the client, Stop-Control-Connection-Request
  // toward the server (which then ends its calls, 2.3), both legs closed once written.
  RelayOutput cut_connection(std::string_view why);
  // The session that applies a cut another relay decides; none (tests): never cut so.
  void set_cutter(ConnectionCutter* cutter) { cutter_ = cutter; }
  // Once per keepalive tick: outgoing calls the server has left unanswered for kAnswerTicks
  // get Outgoing-Call-Reply result 6 "time-out" (2.8) toward the client and
  // Call-Clear-Request toward the server (2.12); incoming calls the client has left
  // unanswered get Call-Disconnect-Notify (2.13) toward it and Incoming-Call-Reply "do not
  // accept" (2.10) toward the server. Their Call IDs go back.
  RelayOutput age_unanswered();

  RelayState state() const { return state_; }
  RelayCounters& counters() { return counters_; }  // the session's keepalive counts its ends
  const std::vector<ProxyCall>& calls() const { return calls_; }
  wire::Ipv4Address client() const { return client_; }
  wire::Ipv4Address server() const { return server_; }

 private:
  std::optional<RelayOutput> on_either(Leg from, const wire::ControlMessage& message);
  RelayOutput incoming_request(const wire::IncomingCallRequest& m);
  RelayOutput incoming_reply(const wire::IncomingCallReply& m);
  RelayOutput incoming_connected(const wire::IncomingCallConnected& m);
  RelayOutput refuse_incoming(std::uint16_t server_call_id);
  // A server Call ID another relay's call holds (CallBook): cut the holder if its call ran
  // past its range at the server; `ordinal`: the new call's (ProxyCall::ordinal).
  enum class Claim : std::uint8_t { Free, Refused, CutsHolder };
  Claim server_call_id_claim(std::uint16_t server_call_id, std::uint16_t ordinal) const;
  bool claim_server_call_id(std::uint16_t server_call_id, std::uint16_t pns_call_id, std::uint16_t ordinal);
  std::uint16_t ordinal_now() const { return static_cast<std::uint16_t>(std::min<std::uint32_t>(outgoing_requests_, 65535)); }
  RelayOutput refuse_taken_server_call_id(ProxyCall& call, std::uint16_t server_call_id);
  std::optional<std::pair<std::uint16_t, std::uint16_t>> allocate_pair();
  RelayOutput client_start(const wire::StartControlConnectionRequest& m);
  RelayOutput server_start(const wire::StartControlConnectionReply& m);
  RelayOutput outgoing_request(const wire::OutgoingCallRequest& m);
  RelayOutput outgoing_reply(const wire::OutgoingCallReply& m);
  RelayOutput clear_request(const wire::CallClearRequest& m);
  RelayOutput disconnect_notify(const wire::CallDisconnectNotify& m);
  RelayOutput set_link_info(const wire::SetLinkInfo& m);
  RelayOutput wan_error(const wire::WanErrorNotify& m);
  RelayOutput stop_request(Leg from, const wire::StopControlConnectionRequest& m);
  RelayOutput stop_reply(Leg from);

  ProxyCall* find_call(std::uint16_t id, std::uint16_t ProxyCall::*field);
  ProxyCall* by_client_id(std::uint16_t id);
  ProxyCall* by_server_id(std::uint16_t id);
  void route_call(const ProxyCall& call);
  void end_call(const ProxyCall* call);
  void end_all_calls();
  RelayOutput ignored(std::uint64_t RelayCounters::*counter);
  std::optional<RelayOutput> judge_refused(const ProxyCall& call, bool incoming);
  bool was_cut(std::uint16_t server_says);
  bool clearing(std::uint16_t pns_call_id) const;  // cleared by us, its answer still owed
  void clear_at_server(RelayOutput& out, const ProxyCall& call);
  void disconnect_client(RelayOutput& out, const ProxyCall& call, std::uint8_t result_code, std::string_view why);

  CallBook& book_;
  RelayCounters& counters_;
  wire::Ipv4Address client_;
  wire::Ipv4Address server_;
  RelayState state_ = RelayState::Idle;
  std::vector<ProxyCall> calls_;
  std::uint16_t serial_ = 0;  // Call Serial Number of our Outgoing-Call-Requests
  std::uint32_t outgoing_requests_ = 0;  // sent to the server (ProxyCall::ordinal)
  CallJudge* judge_ = nullptr;
  ConnectionCutter* cutter_ = nullptr;
  // Calls cut here whose Call-Disconnect-Notify the server still owes (by our PNS Call ID and
  // the server's): its answer is expected, not an unknown call. At most one per call slot.
  std::vector<std::pair<std::uint16_t, std::optional<std::uint16_t>>> clearing_;
};

}  // namespace pptp::proxy
