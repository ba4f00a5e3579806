#include "alg/wire/ppp.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::wire {
namespace {

std::optional<AuthIdentity> identity_in(const std::vector<std::uint8_t>& frame) {
  auto f = parse_ppp_frame(frame);
  EXPECT_TRUE(f);
  auto id = find_auth_identity(*f);
  EXPECT_TRUE(id) << (id ? "" : describe(id.error()));
  return id ? *id : std::nullopt;
}

std::vector<std::uint8_t> chap_response(std::size_t value_size, const std::string& name, std::uint8_t fill) {
  std::vector<std::uint8_t> p{2, 7, 0, 0, static_cast<std::uint8_t>(value_size)};
  for (std::size_t i = 0; i < value_size; ++i) p.push_back(fill);
  p.insert(p.end(), name.begin(), name.end());
  store_u16(&p[2], static_cast<std::uint16_t>(p.size()));
  return p;
}

TEST(Ppp, ProtocolFieldWithAndWithoutCompression) {
  auto f = parse_ppp_frame(std::vector<std::uint8_t>{0xff, 0x03, 0xc0, 0x21, 1});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->protocol, kPppLcp);
  EXPECT_TRUE(f->address_control_present);
  f = parse_ppp_frame(std::vector<std::uint8_t>{0x21, 0x45});  // ACFC + PFC, IPv4
  ASSERT_TRUE(f);
  EXPECT_EQ(f->protocol, kPppIpv4);
  EXPECT_TRUE(f->protocol_compressed);
  EXPECT_FALSE(f->address_control_present);
  EXPECT_FALSE(parse_ppp_frame(std::vector<std::uint8_t>{0xc0, 0x22}));  // even last octet
  EXPECT_FALSE(parse_ppp_frame(std::vector<std::uint8_t>{}));
  EXPECT_FALSE(parse_ppp_frame(std::vector<std::uint8_t>{0xff, 0x03}));
}

TEST(Ppp, PapPeerIdIsTheUserAndThePasswordIsNeverReturned) {
  auto id = identity_in(test::ppp(kPppPap, test::pap_request("alice", "secret")));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->method, AuthMethod::Pap);
  EXPECT_EQ(id->name, "alice");
}

TEST(Ppp, ChapMd5MsChapAndMsChapV2ResponsesNameTheUser) {
  auto id = identity_in(test::ppp(kPppChap, chap_response(16, "bob", 0xaa)));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->method, AuthMethod::ChapMd5);
  EXPECT_EQ(id->name, "bob");
  // MS-CHAPv2: octets 16..23 of the value are reserved zero.
  auto v2 = chap_response(49, "moxie", 0);
  id = identity_in(test::ppp(kPppChap, v2));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->method, AuthMethod::MsChapV2);
  EXPECT_EQ(id->name, "moxie");
  id = identity_in(test::ppp(kPppChap, chap_response(49, "carol", 0x55)));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->method, AuthMethod::MsChap);
}

TEST(Ppp, CompressedProtocolFieldsStillFindTheName) {
  // No address/control, two-octet protocol (PFC does not apply to 0xC223).
  std::vector<std::uint8_t> f{0xc2, 0x23};
  auto r = chap_response(16, "dave", 1);
  f.insert(f.end(), r.begin(), r.end());
  auto id = identity_in(f);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->name, "dave");
}

TEST(Ppp, ChallengesAndOtherFramesNameNobody) {
  auto challenge = chap_response(16, "server", 1);
  challenge[0] = 1;  // Challenge carries the authenticator's name, not the user's
  EXPECT_FALSE(identity_in(test::ppp(kPppChap, challenge)));
  EXPECT_FALSE(identity_in(test::ppp(kPppLcp, {1, 1, 0, 4})));
  EXPECT_FALSE(identity_in(test::ppp(kPppCompressed, {0x90, 0x01, 0x02})));
}

// The error or verdict for a frame (the frame's bytes live for the whole call).
PppErrorCode auth_error(const std::vector<std::uint8_t>& frame) {
  auto f = parse_ppp_frame(frame);
  EXPECT_TRUE(f);
  auto id = find_auth_identity(*f);
  EXPECT_FALSE(id);
  return id ? PppErrorCode::Empty : id.error().code;
}
std::optional<bool> outcome(const std::vector<std::uint8_t>& frame) {
  auto f = parse_ppp_frame(frame);
  EXPECT_TRUE(f);
  return find_auth_outcome(*f);
}

TEST(Ppp, LyingLengthsAreErrors) {
  auto pap = test::pap_request("alice", "x");
  pap[4] = 200;  // Peer-ID Length beyond the packet
  EXPECT_EQ(auth_error(test::ppp(kPppPap, pap)), PppErrorCode::AuthTruncated);
  auto chap = chap_response(16, "bob", 1);
  store_u16(&chap[2], 300);
  EXPECT_EQ(auth_error(test::ppp(kPppChap, chap)), PppErrorCode::AuthTruncated);
  chap = chap_response(16, "bob", 1);
  chap[4] = 250;  // Value-Size beyond the packet
  EXPECT_EQ(auth_error(test::ppp(kPppChap, chap)), PppErrorCode::AuthTruncated);
  EXPECT_EQ(auth_error(test::ppp(kPppChap, chap_response(16, std::string(300, 'n'), 1))),
            PppErrorCode::AuthNameTooLong);
}

TEST(Ppp, AuthOutcomes) {
  EXPECT_EQ(outcome(test::ppp(kPppChap, {3, 7, 0, 4})), true);
  EXPECT_EQ(outcome(test::ppp(kPppChap, {4, 7, 0, 4})), false);
  EXPECT_EQ(outcome(test::ppp(kPppPap, {2, 1, 0, 5, 0})), true);
  EXPECT_EQ(outcome(test::ppp(kPppPap, {3, 1, 0, 5, 0})), false);
  EXPECT_EQ(outcome(test::ppp(kPppLcp, {2, 1, 0, 4})), std::nullopt);
}

}  // namespace
}  // namespace pptp::wire
