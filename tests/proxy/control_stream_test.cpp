// Socket bytes to messages (proxy/control_stream.hpp): split and coalesced messages, and a
// stream that is no PPTP.
#include "proxy/control_stream.hpp"

#include <gtest/gtest.h>

#include "tests/support/packets.hpp"

namespace pptp::proxy {
namespace {

TEST(ControlStream, MessagesSplitAtEveryByteAndCoalescedArriveWhole) {
  wire::EchoRequest echo;
  echo.identifier = 9;
  wire::OutgoingCallRequest call;
  call.call_id = 7;
  const auto bytes = test::concat({test::bytes_of(echo), test::bytes_of(call), test::bytes_of(echo)});
  ControlStream split;
  std::vector<wire::ControlMessage> got;
  for (std::uint8_t b : bytes) ASSERT_TRUE(split.feed(Bytes(&b, 1), got));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].as<wire::OutgoingCallRequest>()->call_id, 7);

  ControlStream whole;
  std::vector<wire::ControlMessage> at_once;
  ASSERT_TRUE(whole.feed(bytes, at_once));
  ASSERT_EQ(at_once.size(), 3u);
  EXPECT_EQ(at_once[2].as<wire::EchoRequest>()->identifier, 9u);
}

TEST(ControlStream, BytesThatAreNoPptpBreakTheStream) {
  ControlStream s;
  std::vector<wire::ControlMessage> got;
  const std::vector<std::uint8_t> http{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', '\r', '\n'};
  EXPECT_FALSE(s.feed(http, got));
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(s.error());
  EXPECT_FALSE(s.feed(test::bytes_of(wire::EchoRequest{}), got)) << "nothing more is read";
}

}  // namespace
}  // namespace pptp::proxy
