// A queued packet whose message did not fit its receive slot (nftables/queue.cpp, MSG_TRUNC):
// its packet id read from the bytes that came, so that it gets a verdict instead of waiting
// in the kernel's queue; nothing read past them, nothing made up when they stop short.
#include "nftables/queue.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

namespace pptp::nft {
namespace {

// A packet message as the kernel builds it (nfqnl_build_packet_message), attributes in order.
class Message {
 public:
  explicit Message(std::uint16_t type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) {
    nlmsghdr h{};
    h.nlmsg_len = 70000;  // what the kernel says it sent: more than came
    h.nlmsg_type = type;
    put(&h, sizeof h);
    nfgenmsg g{};
    g.nfgen_family = AF_INET;
    g.res_id = htons(3);
    put(&g, sizeof g);
  }
  Message& attribute(std::uint16_t type, const void* data, std::size_t size) {
    nlattr a{static_cast<std::uint16_t>(NLA_HDRLEN + size), type};
    put(&a, sizeof a);
    put(data, size);
    bytes_.resize(NLA_ALIGN(bytes_.size()));
    return *this;
  }
  Message& packet_header(std::uint32_t id) {
    nfqnl_msg_packet_hdr p{};
    p.packet_id = htonl(id);
    p.hw_protocol = htons(0x0800);
    return attribute(NFQA_PACKET_HDR, &p, sizeof p);
  }
  Message& payload(std::size_t size) {
    const std::vector<std::uint8_t> data(size, 0x45);
    return attribute(NFQA_PAYLOAD, data.data(), data.size());
  }
  std::span<const std::uint8_t> first(std::size_t n) const { return {bytes_.data(), std::min(n, bytes_.size())}; }
  std::span<const std::uint8_t> all() const { return bytes_; }

 private:
  void put(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<std::uint8_t> bytes_;
};

constexpr std::size_t kHeaders = NLMSG_HDRLEN + sizeof(nfgenmsg);

TEST(TruncatedPacketId, ReadsTheIdOfAPacketCutShortInItsPayload) {
  Message m;
  m.packet_header(0xdeadbeef).payload(3000);
  EXPECT_EQ(truncated_packet_id(m.first(1500)), 0xdeadbeefu);
  EXPECT_EQ(truncated_packet_id(m.first(kHeaders + NLA_HDRLEN + 4)), 0xdeadbeefu);  // just the id came
}

TEST(TruncatedPacketId, FindsTheHeaderAfterOtherAttributes) {
  const std::uint32_t mark = htonl(7);
  Message m;
  m.attribute(NFQA_MARK, &mark, sizeof mark).packet_header(41).payload(100);
  EXPECT_EQ(truncated_packet_id(m.all()), 41u);
}

TEST(TruncatedPacketId, AnswersNoneWhenTheBytesStopBeforeTheId) {
  Message m;
  m.packet_header(41).payload(100);
  for (std::size_t n = 0; n < kHeaders + NLA_HDRLEN + 4; ++n) EXPECT_FALSE(truncated_packet_id(m.first(n))) << n;
}

TEST(TruncatedPacketId, AnswersNoneForAnotherMessageOrABrokenAttribute) {
  Message other((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG);
  other.packet_header(41);
  EXPECT_FALSE(truncated_packet_id(other.all()));
  Message broken;
  broken.attribute(NFQA_MARK, nullptr, 0);
  std::vector<std::uint8_t> zero(broken.all().begin(), broken.all().end());
  zero[kHeaders] = 0;  // an attribute of length 0: no walk that never ends
  zero[kHeaders + 1] = 0;
  EXPECT_FALSE(truncated_packet_id(zero));
  Message without;
  without.payload(100);
  EXPECT_FALSE(truncated_packet_id(without.all()));
}

TEST(UnreadVerdict, FollowsTheOperatorsChoiceForPacketsTheDaemonCannotJudge) {
  EXPECT_EQ(unread_verdict(true), VerdictKind::Accept);
  EXPECT_EQ(unread_verdict(false), VerdictKind::Drop);
}

}  // namespace
}  // namespace pptp::nft
