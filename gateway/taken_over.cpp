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

void Gateway::end_taken_over(const track::ControlConnection& c, Direction d, wire::ControlMessageType type,
                             std::span<const std::uint8_t> message) {
  const auto e = end_named_by(d, type, message);
  if (!e) return;
  for (const OffloadedCall& call : call_observer_->end_taken_over(c, *e)) {
    offloader_.end_adopted(call, wire::find_spec(static_cast<std::uint16_t>(type))->key, translator_);
  }
}

void Gateway::end_taken_over(const track::ControlConnection& c) {
  // A control connection that lost sync was closed by the gateway, not by its peers: its
  // taken-over calls' GRE may go on; they end at the call idle timeout.
  if (c.close_reason == "lost_sync") return;
  for (const OffloadedCall& call : call_observer_->end_taken_over(c, TakenOverEnd{})) {
    offloader_.end_adopted(call, c.close_reason, translator_);
  }
}

}  // namespace pptp::gateway
