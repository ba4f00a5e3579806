// Calls taken over from the HA peer at a promotion (docs/ha.md): the gateway adopted them
// (their elements and outside Call IDs) but their control connection was picked up
// mid-stream, so the tracker has none of them. Their ends are read here, on that
// connection, and the observer (the HA node) names the calls they end.
#include "gateway/gateway.hpp"

namespace pptp::gateway {

using track::Direction;

namespace {

// What a whole message on a taken-over connection ends, if anything.
std::optional<TakenOverEnd> end_named_by(Direction d, wire::ControlMessageType type,
                                         std::span<const std::uint8_t> message) {
  using Type = wire::ControlMessageType;
  const bool from_pns = d == Direction::PnsToPac;
  TakenOverEnd e;
  if (type == Type::StopControlConnectionRequest) return e;  // RFC 2637 2.4: its calls go with it
  if (type == Type::CallClearRequest && from_pns) {
    e.kind = TakenOverEnd::Kind::CallClear;
  } else if (type == Type::CallDisconnectNotify && !from_pns) {
    e.kind = TakenOverEnd::Kind::CallDisconnect;
  } else {
    return std::nullopt;
  }
  const std::size_t at = wire::find_spec(static_cast<std::uint16_t>(type))->call_id_offset;
  if (message.size() < at + 2) return std::nullopt;  // framing checked the length: not reached
  e.call_id = load_u16(message.data() + at);
  return e;
}

}  // namespace

// The connection was picked up mid-stream, so its window takes any first segment (the
// tracker's pick-up is liberal): only once each side acknowledged the other's data can a
// message or a FIN/RST be trusted to come from the connection, not from a host that knows
// its addresses and ports. Until then an end is ignored (the calls idle out by their GRE).
bool Gateway::taken_over_end_proven(const track::ControlConnection& c) {
  if (c.tcp.established_both_ways()) return true;
  if (call_observer_->holds_taken_over(c)) ++counters_.taken_over_ends_unproven;
  return false;
}

void Gateway::end_taken_over(const track::ControlConnection& c, Direction d, wire::ControlMessageType type,
                             std::span<const std::uint8_t> message) {
  const auto e = end_named_by(d, type, message);
  if (!e || !taken_over_end_proven(c)) return;
  for (const OffloadedCall& call : call_observer_->end_taken_over(c, *e)) {
    offloader_.end_adopted(call, wire::find_spec(static_cast<std::uint16_t>(type))->key, translator_);
  }
}

void Gateway::end_taken_over(const track::ControlConnection& c) {
  // Only the peers' own end of the connection: a RST or both FINs the window accepted
  // (tracker.cpp), or the Stop-Control-Connection-Reply. The gateway's own closes (lost
  // sync, timeouts, the daemon's stop, budget evictions) say nothing of the calls, whose
  // GRE may go on: they end at the call idle timeout, or stay in the kernel (--keep-fast-path).
  const std::string& r = c.close_reason;
  if (r != "tcp_reset" && r != "tcp_closed" && r != "stop_control_connection") return;
  if (!taken_over_end_proven(c)) return;
  for (const OffloadedCall& call : call_observer_->end_taken_over(c, TakenOverEnd{})) {
    offloader_.end_adopted(call, c.close_reason, translator_);
  }
}

}  // namespace pptp::gateway
