#include "alg/track/auth_follower.hpp"

#include <cstdio>

namespace pptp::track {

namespace ac = wire::auth_code;

namespace {
constexpr std::uint8_t kLcpConfigureRequest = 1;  // RFC 1661 5.1

bool from_server(Direction d) { return d == Direction::PacToPns; }

AuthEvent anomaly(Anomaly a, std::string detail, std::optional<AuthName> name = std::nullopt) {
  return AuthEvent{AuthEventKind::Anomaly, std::move(name), a, std::move(detail)};
}

std::string describe(const char* what, std::uint8_t identifier) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s, Identifier %u", what, identifier);
  return buf;
}

std::optional<AuthName> name_in(Direction dir, const wire::AuthPacket& p) {
  if (!p.identity) return std::nullopt;
  return AuthName{p.identity->name, p.identity->method, dir, p.identifier};
}

// A name sent by the server or a verdict sent by the client: counts for nothing.
AuthEvent wrong_side(Direction dir, const wire::AuthPacket& p, const char* what) {
  return anomaly(Anomaly::AuthWrongSide,
                 describe(what, p.identifier) + (from_server(dir) ? " from the PAC" : " from the PNS"),
                 name_in(dir, p));
}

}  // namespace

std::string_view name_of(PppFrameClass c) {
  switch (c) {
    case PppFrameClass::LinkControl: return "link_control";
    case PppFrameClass::Authentication: return "authentication";
    case PppFrameClass::NetworkLayer: return "network_layer";
  }
  return "unknown";
}

std::string_view name_of(AuthEventKind k) {
  switch (k) {
    case AuthEventKind::None: return "none";
    case AuthEventKind::Claim: return "claim";
    case AuthEventKind::Accepted: return "accepted";
    case AuthEventKind::Rejected: return "rejected";
    case AuthEventKind::Anomaly: return "anomaly";
  }
  return "unknown";
}

PppFrameClass classify(const wire::PppFrame& frame) {
  switch (frame.protocol) {
    case wire::kPppLcp:
    case kPppLqr: return PppFrameClass::LinkControl;
    case wire::kPppPap:
    case wire::kPppChap:
    case wire::kPppEap: return PppFrameClass::Authentication;
    default: return PppFrameClass::NetworkLayer;
  }
}

AuthStep AuthFollower::on_frame(Direction dir, const wire::PppFrame& frame) {
  AuthStep step{classify(frame), {}};
  if (frame.protocol == wire::kPppLcp) {
    step.event = on_lcp(dir, frame);
    return step;
  }
  if (step.frame_class != PppFrameClass::Authentication) return step;
  auto packet = wire::parse_auth_packet(frame);
  if (!packet) {
    step.event = anomaly(Anomaly::PppMalformed, wire::describe(packet.error()));
    return step;
  }
  const wire::AuthPacket& p = **packet;  // an authentication protocol always gives a packet
  if (p.protocol == wire::kPppPap) {
    step.event = on_pap(dir, p);
  } else if (p.protocol == wire::kPppChap) {
    step.event = on_chap(dir, p);
  } else {
    step.event = on_eap(dir, p);
  }
  return step;
}

AuthEvent AuthFollower::on_lcp(Direction dir, const wire::PppFrame& frame) {
  // The server sends a Configure-Request only while its LCP is not Opened (RFC 1661 4.1: in
  // Opened, a received Configure-Request first brings the layer down): its authentication
  // starts again, and a new PAP exchange is a real one. A client's Configure-Request alone
  // proves nothing about the server's state.
  if (from_server(dir) && !frame.information.empty() && frame.information[0] == kLcpConfigureRequest) {
    *this = AuthFollower{};
  }
  return {};
}

AuthEvent AuthFollower::verdict(Pending pending, bool success, std::uint8_t identifier) {
  if (pending.conflicting) {
    return anomaly(Anomaly::AuthConflictingClaim,
                   describe(success ? "success for an ambiguous exchange" : "failure for an ambiguous exchange",
                            identifier),
                   std::move(pending.name));
  }
  return AuthEvent{success ? AuthEventKind::Accepted : AuthEventKind::Rejected, std::move(pending.name),
                   std::nullopt, {}};
}

// A second answer to the same Identifier with the same name is a retransmission; with
// another name the exchange is ambiguous, and the server's verdict is credited to neither.
AuthEvent AuthFollower::record(std::optional<Pending>& slot, AuthName name) {
  if (slot && slot->name.identifier == name.identifier && slot->name.name != name.name) {
    slot->conflicting = true;
    return anomaly(Anomaly::AuthConflictingClaim, describe("a second name answers the same request", name.identifier),
                   std::move(name));
  }
  if (!slot || slot->name.identifier != name.identifier) slot = Pending{name, false};
  return AuthEvent{AuthEventKind::Claim, std::move(name), std::nullopt, {}};
}

// RFC 1334 2.2: Authenticate-Request from the client, Ack or Nak with its Identifier from
// the server.
AuthEvent AuthFollower::on_pap(Direction dir, const wire::AuthPacket& p) {
  if (p.code == ac::kPapRequest) {
    if (from_server(dir)) return wrong_side(dir, p, "PAP Authenticate-Request");
    AuthName name = *name_in(dir, p);
    // Servers answer a request after their Ack with the same Ack, unchecked (RFC 1334 2.2.1,
    // pppd): a new name then is no new authentication. A new link establishment (on_lcp)
    // clears this.
    if (pap_done_ && pap_acked_ != name.name) {
      return anomaly(Anomaly::AuthPapAfterAck, describe("PAP Authenticate-Request", p.identifier), std::move(name));
    }
    for (auto& slot : pap_) {
      if (slot && slot->name.identifier == p.identifier) return record(slot, std::move(name));
    }
    std::optional<Pending>& slot = pap_[pap_next_];
    pap_next_ = (pap_next_ + 1) % pap_.size();
    // A request pushed out may be the one the server answers first (a slow server, a client
    // retransmitting with new Identifiers): its name is kept while every one pushed out
    // carries the same name, so that its Ack can still be credited (end_pap).
    if (slot) {
      if (slot->conflicting || (pap_evicted_ && pap_evicted_->name != slot->name.name)) pap_evicted_mixed_ = true;
      if (!pap_evicted_) pap_evicted_ = slot->name;
      pap_evicted_ids_.set(slot->name.identifier);
    }
    slot.reset();
    return record(slot, std::move(name));
  }
  if (p.code != ac::kPapAck && p.code != ac::kPapNak) return {};
  const bool ack = p.code == ac::kPapAck;
  if (!from_server(dir)) return wrong_side(dir, p, ack ? "PAP Authenticate-Ack" : "PAP Authenticate-Nak");
  for (auto& slot : pap_) {
    if (!slot || slot->name.identifier != p.identifier) continue;
    Pending answered = std::move(*slot);
    slot.reset();
    if (ack) {
      // The first Ack decides, ambiguous or not; later Acks only repeat it, unchecked (s38
      // policy review F2: an ambiguous first Ack left the next one to credit a new name).
      if (!pap_done_ && !answered.conflicting) pap_acked_ = answered.name.name;
      end_pap();
    }
    return verdict(std::move(answered), ack, p.identifier);
  }
  // An Ack of a request not followed ends PAP as well (s38 policy review F3: the request the
  // server checked, pushed out by four naming another user). It names the user only when
  // every request pushed out, and every one pending, carried one name.
  if (ack && !pap_done_ && evicted_name_alone(p.identifier)) {
    AuthName accepted = *pap_evicted_;
    accepted.identifier = p.identifier;
    pap_acked_ = accepted.name;
    end_pap();
    return AuthEvent{AuthEventKind::Accepted, std::move(accepted), std::nullopt, {}};
  }
  if (ack) end_pap();
  return anomaly(Anomaly::AuthUnmatchedVerdict, describe(ack ? "PAP Authenticate-Ack" : "PAP Authenticate-Nak", p.identifier));
}

// `identifier` is a request's pushed out of the pending slots, and those all carried one name,
// as does every one still pending: a client retransmitting one login, so the Ack is its.
bool AuthFollower::evicted_name_alone(std::uint8_t identifier) const {
  if (!pap_evicted_ || pap_evicted_mixed_ || !pap_evicted_ids_.test(identifier)) return false;
  for (const auto& slot : pap_) {
    if (slot && (slot->conflicting || slot->name.name != pap_evicted_->name)) return false;
  }
  return true;
}

void AuthFollower::end_pap() {
  pap_ = {};
  pap_evicted_.reset();
  pap_evicted_ids_.reset();
  pap_evicted_mixed_ = false;
  pap_done_ = true;
}

// RFC 1994 4: Challenge from the server, Response from the client with the Challenge's
// Identifier, Success or Failure with the same Identifier. MS-CHAP (RFC 2433) and MS-CHAPv2
// (RFC 2759) use the same packets.
AuthEvent AuthFollower::on_chap(Direction dir, const wire::AuthPacket& p) {
  switch (p.code) {
    case ac::kChapChallenge:
      if (!from_server(dir)) return wrong_side(dir, p, "CHAP Challenge");
      if (chap_challenge_ != p.identifier) chap_response_.reset();  // a retransmission keeps the answer
      chap_challenge_ = p.identifier;
      return {};
    case ac::kChapResponse:
      if (from_server(dir)) return wrong_side(dir, p, "CHAP Response");
      if (chap_challenge_ != p.identifier) {
        return anomaly(Anomaly::AuthUnsolicitedResponse, describe("CHAP Response to no open Challenge", p.identifier),
                       name_in(dir, p));
      }
      return record(chap_response_, *name_in(dir, p));
    case ac::kChapSuccess:
    case ac::kChapFailure: {
      const bool success = p.code == ac::kChapSuccess;
      if (!from_server(dir)) return wrong_side(dir, p, success ? "CHAP Success" : "CHAP Failure");
      if (!chap_response_ || chap_response_->name.identifier != p.identifier) {
        return anomaly(Anomaly::AuthUnmatchedVerdict,
                       describe(success ? "CHAP Success" : "CHAP Failure", p.identifier));
      }
      // The exchange is over: a Response repeating its Identifier answers nothing (pppd
      // repeats its verdict to such a Response without checking it).
      Pending answered = std::move(*chap_response_);
      chap_response_.reset();
      chap_challenge_.reset();
      return verdict(std::move(answered), success, p.identifier);
    }
    default:
      return {};  // MS-CHAP Change-Password and others: no name, no verdict
  }
}

// RFC 3748 4: Requests from the server, Responses from the client with the Request's
// Identifier, then Success or Failure. The Identity (5.1) is the only name EAP shows in
// the clear, and only a claim: the method that follows may authenticate another name
// (docs/policy.md). It counts when the server's Success ends the same exchange.
AuthEvent AuthFollower::on_eap(Direction dir, const wire::AuthPacket& p) {
  switch (p.code) {
    case ac::kEapRequest: {
      if (!from_server(dir)) return wrong_side(dir, p, "EAP Request");
      const bool identity = p.eap_type == ac::kEapTypeIdentity;
      if (identity && eap_.request != p.identifier) eap_ = EapExchange{};  // a new exchange
      eap_.request = p.identifier;
      eap_.request_is_identity = identity;
      return {};
    }
    case ac::kEapResponse: {
      if (from_server(dir)) return wrong_side(dir, p, "EAP Response");
      const bool identity = p.identity.has_value();
      if (eap_.request != p.identifier || (identity && !eap_.request_is_identity)) {
        return anomaly(Anomaly::AuthUnsolicitedResponse, describe("EAP Response to no open Request", p.identifier),
                       name_in(dir, p));
      }
      eap_.answered = p.identifier;
      return identity ? record(eap_.identity, *name_in(dir, p)) : AuthEvent{};
    }
    case ac::kEapSuccess:
    case ac::kEapFailure: {
      const bool success = p.code == ac::kEapSuccess;
      if (!from_server(dir)) return wrong_side(dir, p, success ? "EAP Success" : "EAP Failure");
      // The Identifier is the last Response's (RFC 3748 4.2); some servers send it plus one
      // (wpa_supplicant accepts both): neither can belong to another open exchange.
      const bool ends_exchange =
          eap_.answered && (p.identifier == *eap_.answered || p.identifier == static_cast<std::uint8_t>(*eap_.answered + 1));
      std::optional<Pending> identity = std::move(eap_.identity);
      eap_ = EapExchange{};
      if (!ends_exchange || !identity) {
        return anomaly(Anomaly::AuthUnmatchedVerdict,
                       describe(success ? "EAP Success ending no exchange with an Identity"
                                        : "EAP Failure ending no exchange with an Identity",
                                p.identifier));
      }
      return verdict(std::move(*identity), success, p.identifier);
    }
    default:
      return {};
  }
}

}  // namespace pptp::track
