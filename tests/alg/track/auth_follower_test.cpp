#include "alg/track/auth_follower.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::track {
namespace {

using wire::AuthMethod;
constexpr Direction kClient = Direction::PnsToPac;
constexpr Direction kServer = Direction::PacToPns;

// An authentication packet: Code, Identifier, Length, then `body` (RFC 1334, 1994, 3748).
std::vector<std::uint8_t> auth(std::uint16_t protocol, std::uint8_t code, std::uint8_t id,
                               std::vector<std::uint8_t> body = {}) {
  std::vector<std::uint8_t> p{code, id, 0, 0};
  p.insert(p.end(), body.begin(), body.end());
  store_u16(&p[2], static_cast<std::uint16_t>(p.size()));
  return test::ppp(protocol, p);
}
std::vector<std::uint8_t> pap_request(std::uint8_t id, const std::string& user) {
  std::vector<std::uint8_t> body{static_cast<std::uint8_t>(user.size())};
  body.insert(body.end(), user.begin(), user.end());
  body.insert(body.end(), {6, 's', 'e', 'c', 'r', 'e', 't'});
  return auth(wire::kPppPap, 1, id, body);
}
std::vector<std::uint8_t> chap_challenge(std::uint8_t id) {
  std::vector<std::uint8_t> body(17, 0x11);
  body[0] = 16;
  body.insert(body.end(), {'p', 'p', 't', 'p', 'd'});
  return auth(wire::kPppChap, 1, id, body);
}
// A CHAP Response: 16 octets for MD5, 49 for MS-CHAP (v2 has octets 16..23 zero).
std::vector<std::uint8_t> chap_response(std::uint8_t id, const std::string& user, AuthMethod m = AuthMethod::ChapMd5) {
  const std::size_t size = m == AuthMethod::ChapMd5 ? 16 : 49;
  std::vector<std::uint8_t> body(1 + size, 0x5a);
  body[0] = static_cast<std::uint8_t>(size);
  if (m == AuthMethod::MsChapV2) std::fill(body.begin() + 17, body.begin() + 25, 0);
  body.insert(body.end(), user.begin(), user.end());
  return auth(wire::kPppChap, 2, id, body);
}
std::vector<std::uint8_t> chap_verdict(std::uint8_t id, bool success) {
  return auth(wire::kPppChap, success ? 3 : 4, id, {'S', '='});
}
std::vector<std::uint8_t> eap(std::uint8_t code, std::uint8_t id, std::optional<std::uint8_t> type = std::nullopt,
                              const std::string& data = {}) {
  std::vector<std::uint8_t> body;
  if (type) body.push_back(*type);
  body.insert(body.end(), data.begin(), data.end());
  return auth(wire::kPppEap, code, id, body);
}

struct Follower {
  AuthFollower f;
  AuthStep feed(Direction d, const std::vector<std::uint8_t>& bytes) {
    auto frame = wire::parse_ppp_frame(bytes);
    EXPECT_TRUE(frame);
    return f.on_frame(d, *frame);
  }
  AuthEventKind kind(Direction d, const std::vector<std::uint8_t>& bytes) { return feed(d, bytes).event.kind; }
  std::optional<Anomaly> anomaly(Direction d, const std::vector<std::uint8_t>& bytes) {
    return feed(d, bytes).event.anomaly;
  }
};

void expect_accepted(const AuthStep& s, const std::string& name, AuthMethod m, std::uint8_t id) {
  ASSERT_EQ(s.event.kind, AuthEventKind::Accepted) << s.event.detail;
  ASSERT_TRUE(s.event.name);
  EXPECT_EQ(s.event.name->name, name);
  EXPECT_EQ(s.event.name->method, m);
  EXPECT_EQ(s.event.name->sent, kClient);
  EXPECT_EQ(s.event.name->identifier, id);
}

TEST(AuthFollower, PapAckAcceptsTheNameItAnswers) {
  Follower a;
  const AuthStep claim = a.feed(kClient, pap_request(1, "alice"));
  EXPECT_EQ(claim.event.kind, AuthEventKind::Claim);
  EXPECT_EQ(claim.frame_class, PppFrameClass::Authentication);
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 1)), "alice", AuthMethod::Pap, 1);
}

TEST(AuthFollower, PapNakRejectsAndARetryWithANewIdentifierIsJudgedOnItsOwn) {
  Follower a;
  a.feed(kClient, pap_request(1, "alice"));
  const AuthStep nak = a.feed(kServer, auth(wire::kPppPap, 3, 1));
  EXPECT_EQ(nak.event.kind, AuthEventKind::Rejected);
  EXPECT_EQ(nak.event.name->name, "alice");
  a.feed(kClient, pap_request(2, "alice"));
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 2)), "alice", AuthMethod::Pap, 2);
}

TEST(AuthFollower, ChapMd5SuccessAnswersTheResponseToItsChallenge) {
  Follower a;
  EXPECT_EQ(a.kind(kServer, chap_challenge(9)), AuthEventKind::None);
  EXPECT_EQ(a.kind(kClient, chap_response(9, "bob")), AuthEventKind::Claim);
  expect_accepted(a.feed(kServer, chap_verdict(9, true)), "bob", AuthMethod::ChapMd5, 9);
}

TEST(AuthFollower, MsChapV1Success) {
  Follower a;
  a.feed(kServer, chap_challenge(3));
  a.feed(kClient, chap_response(3, "carol", AuthMethod::MsChap));
  expect_accepted(a.feed(kServer, chap_verdict(3, true)), "carol", AuthMethod::MsChap, 3);
}

TEST(AuthFollower, MsChapV2SuccessAndFailure) {
  Follower a;
  a.feed(kServer, chap_challenge(4));
  a.feed(kClient, chap_response(4, "dave", AuthMethod::MsChapV2));
  const AuthStep failure = a.feed(kServer, chap_verdict(4, false));
  EXPECT_EQ(failure.event.kind, AuthEventKind::Rejected);
  EXPECT_EQ(failure.event.name->method, AuthMethod::MsChapV2);
  a.feed(kServer, chap_challenge(5));
  a.feed(kClient, chap_response(5, "dave", AuthMethod::MsChapV2));
  expect_accepted(a.feed(kServer, chap_verdict(5, true)), "dave", AuthMethod::MsChapV2, 5);
}

TEST(AuthFollower, EapIdentityCountsWhenTheSuccessEndsTheSameExchange) {
  Follower a;
  a.feed(kServer, eap(1, 1, 1));                               // Request/Identity
  EXPECT_EQ(a.kind(kClient, eap(2, 1, 1, "erin")), AuthEventKind::Claim);
  a.feed(kServer, eap(1, 2, 26, "challenge"));                 // Request/EAP-MSCHAPv2
  EXPECT_EQ(a.kind(kClient, eap(2, 2, 26, "answer")), AuthEventKind::None);
  expect_accepted(a.feed(kServer, eap(3, 2)), "erin", AuthMethod::EapIdentity, 1);
  // A Success after the exchange ended, or one for an exchange with no Identity, credits nobody.
  EXPECT_EQ(a.anomaly(kServer, eap(3, 2)), Anomaly::AuthUnmatchedVerdict);
  a.feed(kServer, eap(1, 7, 4, "md5"));
  a.feed(kClient, eap(2, 7, 4, "digest"));
  EXPECT_EQ(a.anomaly(kServer, eap(3, 7)), Anomaly::AuthUnmatchedVerdict);
}

TEST(AuthFollower, EapSuccessWithTheNextIdentifierAndEapFailure) {
  Follower a;
  a.feed(kServer, eap(1, 10, 1));
  a.feed(kClient, eap(2, 10, 1, "frank"));
  expect_accepted(a.feed(kServer, eap(3, 11)), "frank", AuthMethod::EapIdentity, 10);
  a.feed(kServer, eap(1, 20, 1));
  a.feed(kClient, eap(2, 20, 1, "frank"));
  EXPECT_EQ(a.kind(kServer, eap(4, 20)), AuthEventKind::Rejected);
}

TEST(AuthFollower, EapIdentityToNoIdentityRequestIsOnlyAnAnomaly) {
  Follower a;
  EXPECT_EQ(a.anomaly(kClient, eap(2, 1, 1, "allowed")), Anomaly::AuthUnsolicitedResponse);
  a.feed(kServer, eap(1, 2, 4, "md5"));  // not an Identity request
  EXPECT_EQ(a.anomaly(kClient, eap(2, 2, 1, "allowed")), Anomaly::AuthUnsolicitedResponse);
}

// The attack of issue 12: a forged CHAP Response naming an allowed user, then PAP as a user
// the server acks. Only the acked name counts.
TEST(AuthFollower, ForgedUnsolicitedResponseThenADifferentAcceptedName) {
  Follower a;
  const AuthStep forged = a.feed(kClient, chap_response(1, "allowed"));
  EXPECT_EQ(forged.event.anomaly, Anomaly::AuthUnsolicitedResponse);
  ASSERT_TRUE(forged.event.name);
  EXPECT_EQ(forged.event.name->name, "allowed");
  a.feed(kClient, pap_request(1, "denied"));
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 1)), "denied", AuthMethod::Pap, 1);
}

TEST(AuthFollower, ReauthenticationAsAnotherUserIsANewAcceptance) {
  Follower a;
  a.feed(kServer, chap_challenge(1));
  a.feed(kClient, chap_response(1, "alice"));
  expect_accepted(a.feed(kServer, chap_verdict(1, true)), "alice", AuthMethod::ChapMd5, 1);
  a.feed(kServer, chap_challenge(2));  // RFC 1994 allows a new Challenge at any time
  a.feed(kClient, chap_response(2, "bob"));
  expect_accepted(a.feed(kServer, chap_verdict(2, true)), "bob", AuthMethod::ChapMd5, 2);
}

TEST(AuthFollower, FramesFromTheWrongSideCountForNothing) {
  Follower a;
  EXPECT_EQ(a.anomaly(kClient, chap_challenge(1)), Anomaly::AuthWrongSide);
  EXPECT_EQ(a.anomaly(kServer, chap_response(1, "pac")), Anomaly::AuthWrongSide);
  EXPECT_EQ(a.anomaly(kServer, pap_request(1, "pac")), Anomaly::AuthWrongSide);
  EXPECT_EQ(a.anomaly(kServer, eap(2, 1, 1, "pac")), Anomaly::AuthWrongSide);
  a.feed(kServer, chap_challenge(2));
  a.feed(kClient, chap_response(2, "alice"));
  EXPECT_EQ(a.anomaly(kClient, chap_verdict(2, true)), Anomaly::AuthWrongSide);  // the client acks itself
  EXPECT_EQ(a.anomaly(kClient, auth(wire::kPppPap, 2, 2)), Anomaly::AuthWrongSide);
  EXPECT_EQ(a.anomaly(kClient, eap(3, 2)), Anomaly::AuthWrongSide);
  expect_accepted(a.feed(kServer, chap_verdict(2, true)), "alice", AuthMethod::ChapMd5, 2);
}

TEST(AuthFollower, IdentifiersMustMatch) {
  Follower a;
  a.feed(kServer, chap_challenge(5));
  EXPECT_EQ(a.anomaly(kClient, chap_response(6, "mallory")), Anomaly::AuthUnsolicitedResponse);
  EXPECT_EQ(a.anomaly(kServer, chap_verdict(6, true)), Anomaly::AuthUnmatchedVerdict);
  a.feed(kClient, chap_response(5, "alice"));
  EXPECT_EQ(a.anomaly(kServer, chap_verdict(4, true)), Anomaly::AuthUnmatchedVerdict);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 5)), Anomaly::AuthUnmatchedVerdict);  // no PAP request
  expect_accepted(a.feed(kServer, chap_verdict(5, true)), "alice", AuthMethod::ChapMd5, 5);
}

// pppd answers a Response that repeats a finished exchange's Identifier with the same
// Success, unchecked: that answer must not credit the new name.
TEST(AuthFollower, AResponseReplayedAfterTheSuccessAnswersNothing) {
  Follower a;
  a.feed(kServer, chap_challenge(1));
  a.feed(kClient, chap_response(1, "denied"));
  expect_accepted(a.feed(kServer, chap_verdict(1, true)), "denied", AuthMethod::ChapMd5, 1);
  EXPECT_EQ(a.anomaly(kClient, chap_response(1, "allowed")), Anomaly::AuthUnsolicitedResponse);
  EXPECT_EQ(a.anomaly(kServer, chap_verdict(1, true)), Anomaly::AuthUnmatchedVerdict);
}

TEST(AuthFollower, TwoNamesForOneIdentifierAreCreditedToNeither) {
  Follower a;
  a.feed(kServer, chap_challenge(1));
  a.feed(kClient, chap_response(1, "denied"));
  EXPECT_EQ(a.kind(kClient, chap_response(1, "denied")), AuthEventKind::Claim);  // a retransmission
  EXPECT_EQ(a.anomaly(kClient, chap_response(1, "allowed")), Anomaly::AuthConflictingClaim);
  EXPECT_EQ(a.anomaly(kServer, chap_verdict(1, true)), Anomaly::AuthConflictingClaim);
  a.feed(kClient, pap_request(3, "denied"));
  EXPECT_EQ(a.anomaly(kClient, pap_request(3, "allowed")), Anomaly::AuthConflictingClaim);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 3)), Anomaly::AuthConflictingClaim);
}

// pppd acks any PAP request after its first Ack without checking it (RFC 1334 2.2.1).
TEST(AuthFollower, PapRequestForAnotherNameAfterTheAckCountsOnlyAfterANewLinkEstablishment) {
  Follower a;
  a.feed(kClient, pap_request(1, "denied"));
  a.feed(kClient, pap_request(2, "allowed"));  // sent before the answer to the first
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 1)), "denied", AuthMethod::Pap, 1);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 2)), Anomaly::AuthUnmatchedVerdict);
  EXPECT_EQ(a.anomaly(kClient, pap_request(3, "allowed")), Anomaly::AuthPapAfterAck);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 3)), Anomaly::AuthUnmatchedVerdict);
  // A client's LCP Configure-Request proves nothing; the server's starts a new link phase.
  a.feed(kClient, test::ppp(wire::kPppLcp, {1, 1, 0, 4}));
  EXPECT_EQ(a.anomaly(kClient, pap_request(4, "allowed")), Anomaly::AuthPapAfterAck);
  a.feed(kServer, test::ppp(wire::kPppLcp, {1, 1, 0, 4}));
  a.feed(kClient, pap_request(5, "allowed"));
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 5)), "allowed", AuthMethod::Pap, 5);
}

// s38 policy review F2: the first Ack answered an ambiguous exchange (two names under one
// Identifier). pppd acks the next request unchecked: it must not credit a new name.
TEST(AuthFollower, AnAmbiguousFirstPapAckEndsPapWithNoName) {
  Follower a;
  a.feed(kClient, pap_request(1, "mallory"));
  EXPECT_EQ(a.anomaly(kClient, pap_request(1, "alice")), Anomaly::AuthConflictingClaim);
  a.feed(kClient, pap_request(3, "alice"));  // sent before the first answer
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 1)), Anomaly::AuthConflictingClaim);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 3)), Anomaly::AuthUnmatchedVerdict);
  EXPECT_EQ(a.anomaly(kClient, pap_request(4, "alice")), Anomaly::AuthPapAfterAck);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 4)), Anomaly::AuthUnmatchedVerdict);
  EXPECT_EQ(a.anomaly(kClient, pap_request(5, "mallory")), Anomaly::AuthPapAfterAck);
}

// s38 policy review F3: the request the server checked was pushed out of the pending slots;
// its Ack, unmatched, ends PAP all the same, and the unchecked Acks after it credit nobody.
TEST(AuthFollower, AnUnmatchedPapAckEndsPapWithNoName) {
  Follower a;
  a.feed(kClient, pap_request(1, "mallory"));
  for (std::uint8_t id = 2; id <= 1 + kMaxPendingPapRequests; ++id) a.feed(kClient, pap_request(id, "alice"));
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 1)), Anomaly::AuthUnmatchedVerdict);
  for (std::uint8_t id = 2; id <= 1 + kMaxPendingPapRequests; ++id) {
    EXPECT_NE(a.kind(kServer, auth(wire::kPppPap, 2, id)), AuthEventKind::Accepted) << int(id);
  }
  EXPECT_EQ(a.anomaly(kClient, pap_request(9, "alice")), Anomaly::AuthPapAfterAck);
}

// A slow server and a client retransmitting its one login with new Identifiers (RFC 1334
// 2.2.1): the request the server answers first was pushed out of the pending slots, and its
// Ack still names the login, since every request carried it.
TEST(AuthFollower, AnAckOfARetransmissionPushedOutStillNamesTheOneLogin) {
  Follower a;
  for (std::uint8_t id = 1; id <= 2 + kMaxPendingPapRequests; ++id) a.feed(kClient, pap_request(id, "bob"));
  expect_accepted(a.feed(kServer, auth(wire::kPppPap, 2, 1)), "bob", AuthMethod::Pap, 1);
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 2)), Anomaly::AuthUnmatchedVerdict);  // a repeat
  EXPECT_EQ(a.anomaly(kClient, pap_request(9, "alice")), Anomaly::AuthPapAfterAck);
}

TEST(AuthFollower, AnAckOfARequestPushedOutNamesNobodyWhenAnotherNameIsPending) {
  Follower a;
  for (std::uint8_t id = 1; id <= 1 + kMaxPendingPapRequests; ++id) a.feed(kClient, pap_request(id, "mallory"));
  a.feed(kClient, pap_request(6, "alice"));  // pushes out Identifier 2, mallory's too
  EXPECT_EQ(a.anomaly(kServer, auth(wire::kPppPap, 2, 1)), Anomaly::AuthUnmatchedVerdict);
  EXPECT_NE(a.kind(kServer, auth(wire::kPppPap, 2, 6)), AuthEventKind::Accepted);
}

// s38 policy review F1: an offloaded call's follower is forgotten (CallAuth::forget), and its
// PAP frames still come through the queue. The new follower must know PAP succeeded.
TEST(CallAuth, AForgottenFollowerKeepsThatPapSucceeded) {
  CallAuth c;
  const auto feed = [&](Direction d, const std::vector<std::uint8_t>& bytes) {
    auto frame = wire::parse_ppp_frame(bytes);
    EXPECT_TRUE(frame);
    return c.on_frame(d, *frame);
  };
  expect_accepted((feed(kClient, pap_request(1, "bob")), feed(kServer, auth(wire::kPppPap, 2, 1))), "bob",
                  AuthMethod::Pap, 1);
  c.forget();
  EXPECT_FALSE(c.following());
  EXPECT_EQ(feed(kClient, pap_request(2, "alice")).event.anomaly, Anomaly::AuthPapAfterAck);
  EXPECT_NE(feed(kServer, auth(wire::kPppPap, 2, 2)).event.kind, AuthEventKind::Accepted);
  const CallAuth copy = c;  // a snapshot (proxy, sync) keeps it too
  c.forget();
  CallAuth again = copy;
  again.forget();
  const std::vector<std::uint8_t> request = pap_request(3, "alice");
  auto frame = wire::parse_ppp_frame(request);
  ASSERT_TRUE(frame);
  EXPECT_EQ(again.on_frame(kClient, *frame).event.anomaly, Anomaly::AuthPapAfterAck);
  // The server's LCP Configure-Request starts a new link establishment: PAP counts again.
  feed(kServer, test::ppp(wire::kPppLcp, {1, 1, 0, 4}));
  c.forget();
  feed(kClient, pap_request(4, "alice"));
  expect_accepted(feed(kServer, auth(wire::kPppPap, 2, 4)), "alice", AuthMethod::Pap, 4);
}

TEST(AuthFollower, MalformedAuthenticationPacketsAreAnomalies) {
  Follower a;
  EXPECT_EQ(a.anomaly(kClient, test::ppp(wire::kPppChap, {2, 1, 0, 40, 16})), Anomaly::PppMalformed);
  EXPECT_EQ(a.anomaly(kServer, test::ppp(wire::kPppPap, {2})), Anomaly::PppMalformed);
}

TEST(AuthFollower, OnlyLinkControlAndAuthenticationPassBeforeTheUserIsDecided) {
  Follower a;
  const auto cls = [&](std::uint16_t protocol) { return a.feed(kClient, test::ppp(protocol, {9, 1, 0, 4})).frame_class; };
  EXPECT_EQ(cls(wire::kPppLcp), PppFrameClass::LinkControl);
  EXPECT_EQ(cls(kPppLqr), PppFrameClass::LinkControl);
  EXPECT_EQ(cls(wire::kPppPap), PppFrameClass::Authentication);
  EXPECT_EQ(cls(wire::kPppChap), PppFrameClass::Authentication);
  EXPECT_EQ(cls(wire::kPppEap), PppFrameClass::Authentication);
  EXPECT_EQ(cls(wire::kPppIpcp), PppFrameClass::NetworkLayer);
  EXPECT_EQ(cls(wire::kPppCcp), PppFrameClass::NetworkLayer);
  EXPECT_EQ(cls(wire::kPppCompressed), PppFrameClass::NetworkLayer);
  EXPECT_EQ(cls(wire::kPppIpv4), PppFrameClass::NetworkLayer);
  EXPECT_EQ(cls(0x8057), PppFrameClass::NetworkLayer);  // IPV6CP
  EXPECT_EQ(cls(0xC029), PppFrameClass::NetworkLayer);  // Microsoft CBCP: after authentication
}

}  // namespace
}  // namespace pptp::track
