#include "nat/rewrite.hpp"

#include <gtest/gtest.h>

#include "nat/checksum.hpp"
#include "tests/support/packets.hpp"

namespace pptp::nat {
namespace {

using test::addr;
using T = wire::ControlMessageType;

std::vector<std::uint8_t> with_checksums(std::vector<std::uint8_t> p) {
  update_ipv4_header_checksum(p, 20);
  if (p[9] == wire::kIpProtocolTcp) update_tcp_checksum(p, 20);
  return p;
}

TEST(Checksum, MatchesTheRfc1071Example) {
  // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
  const std::vector<std::uint8_t> data{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(fold(ones_complement_sum(data)), 0xddf2);
}

TEST(CallIdField, TheTableRewritesOnlyThePnsCallId) {
  EXPECT_EQ(call_id_field(T::OutgoingCallRequest, true).rewrite, CallIdRewrite::Allocate);
  EXPECT_EQ(call_id_field(T::OutgoingCallRequest, true).offset, 12);
  EXPECT_EQ(call_id_field(T::IncomingCallReply, true).rewrite, CallIdRewrite::Allocate);
  EXPECT_EQ(call_id_field(T::CallClearRequest, true).rewrite, CallIdRewrite::ToOutside);
  EXPECT_EQ(call_id_field(T::OutgoingCallReply, false).rewrite, CallIdRewrite::ToInside);
  EXPECT_EQ(call_id_field(T::OutgoingCallReply, false).offset, 14);  // Peer's Call ID
  EXPECT_EQ(call_id_field(T::IncomingCallConnected, false).rewrite, CallIdRewrite::ToInside);
  EXPECT_EQ(call_id_field(T::WanErrorNotify, false).rewrite, CallIdRewrite::ToInside);
  // RFC 2637 2.13: Call-Disconnect-Notify carries the PAC's Call ID, Windows servers the
  // PNS's: the Call ID field, translated back only in the second reading.
  EXPECT_EQ(call_id_field(T::CallDisconnectNotify, false).rewrite, CallIdRewrite::DisconnectCallId);
  EXPECT_EQ(call_id_field(T::CallDisconnectNotify, false).offset, 12);
  EXPECT_EQ(call_id_field(T::CallDisconnectNotify, true).rewrite, CallIdRewrite::None);
  EXPECT_EQ(call_id_field(T::SetLinkInfo, true).rewrite, CallIdRewrite::None);
  // From the PAC only Windows servers send it, naming the PNS's Call ID (docs/protocol-notes.md).
  EXPECT_EQ(call_id_field(T::SetLinkInfo, false).rewrite, CallIdRewrite::ToInside);
  EXPECT_EQ(call_id_field(T::IncomingCallRequest, false).rewrite, CallIdRewrite::None);
  for (const auto& spec : wire::kMessageSpecs) {
    if (!spec.call_scoped) {
      EXPECT_EQ(call_id_field(spec.type, true).rewrite, CallIdRewrite::None) << spec.name;
      EXPECT_EQ(call_id_field(spec.type, false).rewrite, CallIdRewrite::None) << spec.name;
    }
  }
}

TEST(Rewrite, AddressChangesKeepBothChecksumsRight) {
  auto p = with_checksums(test::tcp({addr("192.0.2.11"), 40000}, {addr("198.51.100.2"), 1723}, 5,
                                    wire::tcp_flags::kAck, {1, 2, 3, 4, 5}));
  set_ipv4_source(p, addr("198.51.100.1"));
  EXPECT_TRUE(ipv4_header_checksum_ok(p, 20));
  EXPECT_TRUE(tcp_checksum_ok(p, 20));
  EXPECT_EQ(load_u32(&p[12]), addr("198.51.100.1").value);
  set_ipv4_destination(p, addr("203.0.113.9"));
  EXPECT_TRUE(ipv4_header_checksum_ok(p, 20));
  EXPECT_TRUE(tcp_checksum_ok(p, 20));
}

TEST(Rewrite, GreKeyAndAddress) {
  auto p = with_checksums(test::gre(addr("198.51.100.2"), addr("198.51.100.1"), 1234, 1, {0xff, 3, 0xc0, 0x21}));
  set_ipv4_destination(p, addr("192.0.2.11"));
  set_gre_call_id(p, 7);
  const auto ip = wire::parse_ipv4(p);
  ASSERT_TRUE(ip);
  const auto gre = wire::parse_gre(ip->payload);
  ASSERT_TRUE(gre);
  EXPECT_EQ(gre->header.call_id, 7);
  EXPECT_EQ(ip->destination, addr("192.0.2.11"));
  EXPECT_TRUE(ipv4_header_checksum_ok(p, 20));
}

TEST(StreamPatches, ApplyAtEverySplitOfTheStreamAndToRetransmissions) {
  const std::vector<std::uint8_t> stream(40, 0xAA);
  const std::uint32_t isn = 0xfffffff8u;  // the stream crosses the sequence wrap
  StreamPatches patches;
  patches.add(isn + 1 + 20, 0x1234);  // bytes 20 and 21
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    std::vector<std::uint8_t> a(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut));
    std::vector<std::uint8_t> b(stream.begin() + static_cast<std::ptrdiff_t>(cut), stream.end());
    patches.apply(isn + 1, a);
    patches.apply(isn + 1 + static_cast<std::uint32_t>(cut), b);
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a[20], 0x12) << cut;
    ASSERT_EQ(a[21], 0x34) << cut;
    a[20] = a[21] = 0xAA;
    ASSERT_EQ(a, stream) << "only the two bytes change, cut " << cut;
  }
}

TEST(StreamPatches, TcpPayloadPatchFixesTheChecksumAndIgnoresOtherSegments) {
  StreamPatches patches;
  patches.add(1000 + 12, 0x0042);
  auto hit = with_checksums(test::tcp({addr("192.0.2.11"), 40000}, {addr("198.51.100.2"), 1723}, 1000,
                                      wire::tcp_flags::kAck, std::vector<std::uint8_t>(20, 0)));
  auto miss = with_checksums(test::tcp({addr("192.0.2.11"), 40000}, {addr("198.51.100.2"), 1723}, 1020,
                                       wire::tcp_flags::kAck, std::vector<std::uint8_t>(20, 0)));
  const auto miss_before = miss;
  EXPECT_TRUE(patch_tcp_payload(hit, *tcp_payload_of(hit), patches));
  EXPECT_EQ(hit[40 + 12], 0x00);
  EXPECT_EQ(hit[40 + 13], 0x42);
  EXPECT_TRUE(tcp_checksum_ok(hit, 20));
  EXPECT_FALSE(patch_tcp_payload(miss, *tcp_payload_of(miss), patches));
  EXPECT_EQ(miss, miss_before);
}

TEST(StreamPatches, TheRingKeepsTheNewest) {
  StreamPatches patches;
  for (std::uint32_t i = 0; i < kMaxStreamPatches + 5; ++i) patches.add(i * 100, 0xBEEF);
  EXPECT_EQ(patches.size(), kMaxStreamPatches);
  std::vector<std::uint8_t> oldest(2, 0), newest(2, 0);
  EXPECT_FALSE(patches.apply(0, oldest));
  EXPECT_TRUE(patches.apply((kMaxStreamPatches + 4) * 100, newest));
  // A segment that may hold a pushed-out field is known as such; a newer one is not.
  EXPECT_TRUE(patches.lost_before(0));
  EXPECT_TRUE(patches.lost_before(4 * 100 + 1));
  EXPECT_FALSE(patches.lost_before(4 * 100 + 2));
}

TEST(StreamPatches, ASecondPatchAtTheSameSequenceReplacesTheFirst) {
  StreamPatches patches;
  patches.add(100, 0x1111);
  patches.add(100, 0x2222);
  EXPECT_EQ(patches.size(), 1u);
  EXPECT_EQ(patches.find(100), 0x2222);
  EXPECT_EQ(patches.find(101), std::nullopt);
  EXPECT_FALSE(patches.lost_before(0));
}

}  // namespace
}  // namespace pptp::nat
