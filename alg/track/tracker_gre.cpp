// GRE of the calls (RFC 2637 section 4): the routes by (sender, receiver, receiver's Call
// ID), matching in both directions, and the PPP authentication each call carries.
#include <algorithm>

#include "alg/track/tracker.hpp"
#include "alg/track/tracker_internal.hpp"

namespace pptp::track {

using detail::fmt;
using detail::index_of;

std::optional<Tracker::GreKey> Tracker::gre_key(const ControlConnection& c, const Call& call,
                                               Direction toward) {
  // GRE toward the PAC carries the PAC's Call ID, toward the PNS the PNS's (RFC 2637 4.1).
  const bool to_pac = toward == Direction::PnsToPac;
  const std::optional<std::uint16_t> id = to_pac ? call.pac_call_id : call.pns_call_id;
  if (!id) return std::nullopt;
  return to_pac ? GreKey{c.pns.address.value, c.pac.address.value, *id}
                : GreKey{c.pac.address.value, c.pns.address.value, *id};
}

Tracker::RouteSlot Tracker::find_gre_route(const GreKey& k) const {
  return gre_index_.find(gre_hash(k), [&](RouteSlot x) { return gre_routes_[x - 1].key == k; });
}

void Tracker::index_gre(ControlConnection& c, Call& call, Direction toward) {
  const std::optional<GreKey> key = gre_key(c, call, toward);
  if (!key) return;
  if (const RouteSlot s = find_gre_route(*key); s != 0) {  // the first call keeps the key
    const GreRoute& other = gre_routes_[s - 1];
    if (other.call != &call) {
      raise(Anomaly::GreKeyCollision, &c, toward,
            fmt("Call ID %u toward the %s is already used by connection %llu", key->call_id,
                toward == Direction::PnsToPac ? "PAC" : "PNS", static_cast<unsigned long long>(other.connection->id)));
    }
    return;
  }
  RouteSlot s = 0;
  if (!free_gre_routes_.empty()) {
    s = free_gre_routes_.back();
    free_gre_routes_.pop_back();
    gre_routes_[s - 1] = GreRoute{*key, toward, &c, &call};
  } else {
    gre_routes_.push_back(GreRoute{*key, toward, &c, &call});
    s = static_cast<RouteSlot>(gre_routes_.size());
  }
  gre_index_.assign(gre_hash(*key), s, [](RouteSlot) { return false; },
                    [this](RouteSlot x) { return gre_hash(gre_routes_[x - 1].key); });
}

void Tracker::unindex_gre(const ControlConnection& c, const Call& call) {
  // Only the call's own two keys, and only where they still point at this call (a colliding
  // call may own the key).
  for (const Direction d : {Direction::PnsToPac, Direction::PacToPns}) {
    const std::optional<GreKey> key = gre_key(c, call, d);
    if (!key) continue;
    const RouteSlot s = find_gre_route(*key);
    if (s == 0 || gre_routes_[s - 1].call != &call) continue;
    gre_index_.erase(gre_hash(*key), [s](RouteSlot x) { return x == s; },
                     [this](RouteSlot x) { return gre_hash(gre_routes_[x - 1].key); });
    free_gre_routes_.push_back(s);
  }
}

void Tracker::note_offloaded_gre(const wire::Endpoint& pns, const wire::Endpoint& pac, std::uint16_t pns_call_id,
                                 Direction d, std::uint64_t packets, std::uint64_t bytes, double time) {
  const auto it = connections_.find(ConnectionKey{pns, pac});
  if (it == connections_.end() || packets == 0) return;
  ControlConnection& c = *it->second;
  Call* call = c.find_by_pns_call_id(pns_call_id);
  if (call == nullptr || call->state == CallState::Closed) return;
  GreFlowStats& st = call->gre[static_cast<std::size_t>(d)];
  st.packets += packets;
  st.payload_bytes += bytes;
  call->last_activity = std::max(call->last_activity, time);
  c.last_activity = std::max(c.last_activity, time);
}

void Tracker::forget_auth_state(const ControlConnection& c, const Call& call) {
  const auto it = connections_.find(ConnectionKey{c.pns, c.pac});
  if (it == connections_.end() || it->second.get() != &c) return;
  for (const auto& owned : it->second->calls) {
    if (owned.get() == &call) owned->auth.forget();
  }
}

GreOutcome Tracker::on_gre(double time, const wire::Ipv4Packet& ip) {
  GreOutcome out;
  auto parsed = wire::parse_gre(ip.payload);
  if (!parsed) {
    const wire::GreError& e = parsed.error();
    const bool not_pptp = e.code == wire::GreErrorCode::NotEnhanced || e.code == wire::GreErrorCode::NotPpp;
    out.verdict = not_pptp ? GreVerdict::NotPptp : GreVerdict::Malformed;
    raise(not_pptp ? Anomaly::GreNotPptp : Anomaly::GreMalformed, nullptr, std::nullopt,
          wire::to_string(ip.source) + " -> " + wire::to_string(ip.destination) + ": " + wire::describe(e));
    observer_.on_gre(nullptr, nullptr, Direction::PnsToPac, ip, nullptr);
    return out;
  }
  const wire::GrePacket& gre = *parsed;
  const RouteSlot slot = find_gre_route(GreKey{ip.source.value, ip.destination.value, gre.header.call_id});
  if (slot == 0) {
    out.verdict = GreVerdict::UnknownCall;
    raise(Anomaly::GreUnknownCall, nullptr, std::nullopt,
          fmt("%s -> %s Call ID %u", wire::to_string(ip.source).c_str(),
              wire::to_string(ip.destination).c_str(), gre.header.call_id));
    observer_.on_gre(nullptr, nullptr, Direction::PnsToPac, ip, &gre.header);
    return out;
  }
  const GreRoute& route = gre_routes_[slot - 1];
  Call& call = *route.call;
  out.verdict = GreVerdict::Matched;
  out.connection = route.connection;
  out.call = &call;
  out.direction = route.direction;
  GreFlowStats& st = call.gre[index_of(route.direction)];
  ++st.packets;
  st.payload_bytes += gre.payload.size();
  if (gre.header.ack_only()) ++st.ack_only;
  if (gre.header.sequence) {
    const std::uint32_t seq = *gre.header.sequence;
    if (st.highest_sequence && static_cast<std::int32_t>(seq - *st.highest_sequence) < 0) {
      ++st.sequence_backwards;
    } else {
      st.highest_sequence = seq;
    }
  }
  call.last_activity = time;
  route.connection->last_activity = std::max(route.connection->last_activity, time);
  if (call.state != CallState::Established && call.state != CallState::Clearing) {
    raise(Anomaly::GreBeforeEstablished, route.connection, route.direction,
          fmt("call %llu in state %s", static_cast<unsigned long long>(call.id),
              std::string(name_of(call.state)).c_str()));
  }
  if (!gre.payload.empty()) out.ppp = scan_ppp(*route.connection, call, route.direction, gre.payload);
  observer_.on_gre(route.connection, &call, route.direction, ip, &gre.header);
  return out;
}

std::optional<PppFrameClass> Tracker::scan_ppp(ControlConnection& c, Call& call, Direction dir, Bytes payload) {
  auto frame = wire::parse_ppp_frame(payload);
  if (!frame) {
    raise(Anomaly::PppMalformed, &c, dir, wire::describe(frame.error()));
    return std::nullopt;
  }
  AuthStep step = call.auth.on_frame(dir, *frame);
  if (step.event.kind != AuthEventKind::None) apply_auth_event(c, call, dir, std::move(step.event));
  return step.frame_class;
}

void Tracker::apply_auth_event(ControlConnection& c, Call& call, Direction dir, AuthEvent event) {
  if (event.name && !call.first_claim) call.first_claim = event.name;
  switch (event.kind) {
    case AuthEventKind::Anomaly:
      raise(*event.anomaly, &c, dir, std::move(event.detail));
      break;
    case AuthEventKind::Accepted: {
      ++call.authentications;
      call.auth_succeeded = true;
      const bool changed = !call.user || call.user->name != event.name->name;
      call.user = std::move(event.name);
      if (changed) observer_.on_call_changed(c, call);
      break;
    }
    case AuthEventKind::Rejected:
      call.auth_succeeded = false;
      call.rejected = std::move(event.name);
      observer_.on_call_changed(c, call);
      break;
    default:
      break;
  }
}

}  // namespace pptp::track
