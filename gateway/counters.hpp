// What happened to packets, beyond the tracker's anomaly counters: declared once here, in
// three lists that are the three sections of the status file ("packets", "policy",
// "fast_path"). Each entry: X(member, key in the status JSON, what it counts).
#pragma once

#include "alg/core/counter_list.hpp"

#define PPTP_GATEWAY_PACKET_COUNTERS(X)                                                           \
  X(control_segments, "control_segments", "TCP/1723 segments seen")                              \
  X(control_rewritten, "control_rewritten", "control segments whose Call ID was rewritten")     \
  X(control_dropped, "control_dropped", "segments of a refused call set-up, dropped")           \
  X(control_held, "control_held", "segments held until their Call ID field was whole")          \
  X(control_refused, "control_refused", "segments too far ahead of a gap: dropped, sent again") \
  X(gre_to_pns, "gre_to_pns", "GRE packets from the server to a client")                        \
  X(gre_to_pac, "gre_to_pac", "GRE packets from a client to the server")                        \
  X(gre_rewritten, "gre_rewritten", "GRE packets whose destination or Key was rewritten")       \
  X(gre_unknown_dropped, "gre_unknown_dropped", "GRE of no call, dropped")                      \
  X(gre_unknown_passed, "gre_unknown_passed", "GRE of no call, passed (--allow-unknown-gre)")   \
  X(gre_not_pptp_passed, "gre_not_pptp_passed", "GRE that is not PPTP's, passed")               \
  X(malformed_dropped, "malformed_dropped", "packets that do not decode, dropped")              \
  X(other_passed, "other_passed", "queued packets that are not PPTP, passed")                   \
  X(calls_refused, "calls_refused", "call set-ups refused: no Call ID left toward the server")   \
  X(control_hold_bound_dropped, "control_hold_bound_dropped", "segments to hold past a hold bound: dropped, sent again") \
  X(control_held_dropped, "control_held_dropped", "held segments dropped: their connection closed or lost sync") \
  X(control_gap_dropped, "control_gap_dropped", "segments ahead of a gap in the stream: dropped, sent again") \
  X(control_patch_lost_dropped, "control_patch_lost_dropped", "segments whose Call ID rewrite left the patch bound: dropped") \
  X(control_desync_dropped, "control_desync_dropped", "data segments of a connection that lost sync, dropped") \
  X(control_differs_dropped, "control_differs_dropped", "control segments whose bytes differ from those read at their sequence numbers, dropped") \
  X(control_deferred_dropped, "control_deferred_dropped", "segments with a client's call set-up before its connection was established: dropped, read again when sent again") \
  X(control_after_close_dropped, "control_after_close_dropped", "client data on a control connection the tracker closed, dropped") \
  X(control_untracked_dropped, "control_untracked_dropped", "segments of new control connections the full table could not follow, dropped") \
  X(stale_gre_forgets, "stale_gre_forgets", "server Call IDs given to a call: the conntrack entry another host's client GRE may hold for it deleted") \
  X(conntrack_keeps, "conntrack_keeps", "RSTs and FINs the tracker did not act on: the connection's conntrack entry put back in ESTABLISHED") \
  X(connections_desynced, "connections_desynced", "control connections closed because their stream lost sync") \
  X(gre_unanswered_dropped, "gre_unanswered_dropped", "server GRE toward a call the server has not answered, dropped") \
  X(killed_dropped, "killed_dropped", "control data and GRE of calls ended by the operator, or of connections cut for a server Call ID, dropped") \
  X(connections_cut_server_call_id, "connections_cut_server_call_id", "control connections cut: the server gave one of their calls a Call ID another client's call needed, and they had more calls") \
  X(pac_call_id_refusal_unsignalled, "pac_call_id_refusal_unsignalled", "Outgoing-Call-Replies of calls ended for a server Call ID another client's call has, whose Result Code had left before the reply was whole: the client was not told General Error") \
  X(budget_connections_refused, "budget_connections_refused", "new connections over the source's connection budget") \
  X(budget_half_open_refused, "budget_half_open_refused", "new connections over the source's half-open budget") \
  X(budget_calls_refused, "budget_calls_refused", "call set-ups over the source's call budget")        \
  X(budget_reassembly_refused, "budget_reassembly_refused", "out-of-order segments not buffered: the source's budget") \
  X(budget_memory_refused, "budget_memory_refused", "connections, calls or out-of-order segments over the memory budget") \
  X(budget_held_refused, "budget_held_refused", "segments not held for a Call ID field: the source's held-bytes budget")

#define PPTP_GATEWAY_POLICY_COUNTERS(X)                                                           \
  X(connections_denied, "connections_denied", "control connections the policy or a limit refused") \
  X(control_policy_dropped, "control_dropped", "TCP segments of refused connections")            \
  X(calls_denied, "calls_denied", "call set-ups refused by rules or limits")                     \
  X(calls_cut, "calls_cut", "calls denied after set-up: by PPP name or on reload")               \
  X(gre_policy_dropped, "gre_dropped", "GRE packets of denied calls")                           \
  X(gre_before_user, "gre_before_user", "network-layer GRE dropped before the call's user was decided")

#define PPTP_GATEWAY_FAST_PATH_COUNTERS(X)                                                        \
  X(calls_offloaded, "calls_offloaded", "calls handed to the kernel")                           \
  X(taken_over_ends_unproven, "taken_over_ends_unproven", "ends of taken-over calls read before the connection's window was proven both ways: held until their receiver acknowledges them") \
  X(taken_over_ends_acknowledged, "taken_over_ends_acknowledged", "held ends of taken-over calls applied: their receiver acknowledged the message and the window is proven") \
  X(gre_offloaded_to_pns, "gre_to_pns", "GRE packets the kernel forwarded to clients")          \
  X(gre_offloaded_to_pac, "gre_to_pac", "GRE packets the kernel forwarded to servers")

namespace pptp::gateway {

struct GatewayCounters {
  PPTP_GATEWAY_PACKET_COUNTERS(PPTP_COUNTER_FIELD)
  PPTP_GATEWAY_POLICY_COUNTERS(PPTP_COUNTER_FIELD)
  PPTP_GATEWAY_FAST_PATH_COUNTERS(PPTP_COUNTER_FIELD)
};

template <class F>
void visit_packet_counters(const GatewayCounters& c, F&& f) {
  PPTP_GATEWAY_PACKET_COUNTERS(PPTP_COUNTER_VISIT)
}
template <class F>
void visit_policy_counters(const GatewayCounters& c, F&& f) {
  PPTP_GATEWAY_POLICY_COUNTERS(PPTP_COUNTER_VISIT)
}
template <class F>
void visit_fast_path_counters(const GatewayCounters& c, F&& f) {
  PPTP_GATEWAY_FAST_PATH_COUNTERS(PPTP_COUNTER_VISIT)
}

}  // namespace pptp::gateway
