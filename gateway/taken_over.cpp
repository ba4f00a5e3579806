// Calls taken over from the HA peer at a promotion or a healing (docs/ha.md): the gateway
// adopted them (their elements and outside Call IDs) but their control connection was picked
// up mid-stream, so the tracker has none of them. Their ends are read here, on that
// connection, by the Call IDs the observer (the HA node) holds for them.
#include "gateway/gateway.hpp"

namespace pptp::gateway {

using track::Direction;

namespace {
std::uint16_t call_id_at(wire::ControlMessageType type, std::span<const std::uint8_t> message) {
  const std::size_t at = wire::find_spec(static_cast<std::uint16_t>(type))->call_id_offset;
  return message.size() >= at + 2 ? load_u16(message.data() + at) : 0;  // framing checked the length
}
}  // namespace

std::optional<TakenOverEnd> Gateway::taken_over_end_named(const track::ControlConnection& c, Direction d,
                                                          wire::ControlMessageType type,
                                                          std::span<const std::uint8_t> message) const {
  using Type = wire::ControlMessageType;
  const bool from_pns = d == Direction::PnsToPac;
  if (type == Type::StopControlConnectionRequest) return TakenOverEnd{};  // RFC 2637 2.4: its calls go with it
  // A client's Call-Clear-Request (2.12) ends nothing yet, as for a call of the tracker's
  // (Clearing): the server's answer, its Call-Disconnect-Notify, still names the call and is
  // translated by it (a Windows server's names the client's outside Call ID).
  if (type != Type::CallDisconnectNotify || from_pns) return std::nullopt;
  // 2.13: the PAC's Call ID, or a Windows server's PNS (outside) one: the reading the
  // field's translation takes (names_pac_call), whatever call of `c` it names.
  const std::uint16_t id = call_id_at(type, message);
  const auto call =
      call_observer_->taken_over_call(c, names_pac_call(c, id) ? CallIdSide::Pac : CallIdSide::Outside, id);
  if (!call) return std::nullopt;
  return TakenOverEnd{call->pns_call_id};
}

// The connection was picked up mid-stream, so its window takes any first segment (the
// tracker's pick-up is liberal): only once each side acknowledged the other's data can a
// message or a FIN/RST be trusted to come from the connection, not from a host that knows
// its addresses and ports. A message's end read before then is held until its receiver
// acknowledges the message, in a window proven both ways: the receiver took those bytes
// (a Call-Clear answered at once after a failover, before any Echo, ends the call then).
bool Gateway::taken_over_end_proven(const track::ControlConnection& c) {
  if (c.tcp.established_both_ways()) return true;
  if (call_observer_->holds_taken_over(c)) ++counters_.taken_over_ends_unproven;
  return false;
}

void Gateway::end_or_hold_taken_over(const track::ControlConnection& c, Direction d, const TakenOverEnd& e,
                                     std::string_view reason, std::uint32_t through) {
  if (taken_over_end_proven(c)) return end_taken_over(c, e, reason);
  if (!call_observer_->holds_taken_over(c)) return;
  ConnectionRecord& r = record_of(c);
  if (r.unproven_ends.size() >= kMaxUnprovenEnds) return;  // counted: those calls idle out
  r.unproven_ends.push_back(UnprovenEnd{e, reason, index_of(track::reverse(d)), through});
}

// The receiver acknowledged the message: its acknowledgment at or just past the message's
// end (kUnprovenEndAckSpan). A pick-up takes any first segment, so a side's range can span
// a forged message and the real data 2^31 apart: an acknowledgment far past the message
// says nothing of it, and the end is let go (it would never be taken).
void Gateway::settle_unproven_ends(const track::ControlConnection& c, ConnectionRecord& r) {
  if (r.unproven_ends.empty() || !c.tcp.established_both_ways()) return;
  std::erase_if(r.unproven_ends, [&](const UnprovenEnd& u) {
    const std::optional<std::uint32_t> ack = c.tcp.highest_ack(u.receiver);
    const std::uint32_t past = ack ? *ack - u.through : 0;
    if (!ack || past >= 0x80000000u) return false;  // not yet acknowledged
    if (past > kUnprovenEndAckSpan) return true;
    ++counters_.taken_over_ends_acknowledged;
    end_taken_over(c, u.end, u.reason);
    return true;
  });
}

void Gateway::end_taken_over(const track::ControlConnection& c, const TakenOverEnd& e, std::string_view reason) {
  for (const OffloadedCall& call : call_observer_->end_taken_over(c, e)) {
    offloader_.end_adopted(call, reason, translator_);
  }
}

void Gateway::end_taken_over(const track::ControlConnection& c) {
  // Only the peers' own end of the connection: a RST or both FINs the window accepted
  // (tracker.cpp), or the Stop-Control-Connection-Reply. The gateway's own closes (lost
  // sync, timeouts, the daemon's stop, budget evictions) say nothing of the calls, whose
  // GRE may go on: they end at the call idle timeout, or stay in the kernel (--keep-fast-path).
  const std::string& r = c.close_reason;
  if (r != "tcp_reset" && r != "tcp_closed" && r != "stop_control_connection") return;
  if (taken_over_end_proven(c)) end_taken_over(c, TakenOverEnd{}, r);
}

}  // namespace pptp::gateway
