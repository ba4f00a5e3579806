// Segments and a connection after its handshake, for the TcpWindow tests.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "alg/stream/tcp_window.hpp"

namespace pptp::stream {
namespace {

namespace f = wire::tcp_flags;
constexpr std::size_t kPns = 0, kPac = 1;

wire::TcpSegment segment(std::uint32_t seq, std::uint8_t flags, std::uint32_t ack = 0, std::uint16_t window = 0,
                         std::size_t data = 0) {
  static const std::uint8_t bytes[2048] = {};
  wire::TcpSegment s;
  s.sequence = seq;
  s.acknowledgment = ack;
  s.flags = flags;
  s.window = window;
  s.payload = Bytes(bytes, data);
  return s;
}
wire::TcpSegment syn(std::uint32_t seq, std::optional<std::uint8_t> scale, std::uint16_t window,
                     std::optional<std::uint32_t> ack = std::nullopt) {
  wire::TcpSegment s = segment(seq, ack ? f::kSyn | f::kAck : f::kSyn, ack.value_or(0), window);
  s.window_scale = scale;
  return s;
}

// A connection after its handshake and one exchange: the PNS sent 100 bytes from `pns`+1,
// the PAC acknowledged them and opened a window of 1000; the PAC's next is `pac`+1.
struct Connection {
  TcpWindow w;
  std::uint32_t pns, pac;
  Connection(std::uint32_t pns_isn, std::uint32_t pac_isn) : pns(pns_isn), pac(pac_isn) {
    EXPECT_TRUE(w.judge(kPns, syn(pns, std::nullopt, 1000)).take);
    EXPECT_TRUE(w.judge(kPac, syn(pac, std::nullopt, 1000, pns + 1)).take);
    EXPECT_TRUE(w.judge(kPns, segment(pns + 1, f::kAck, pac + 1, 1000, 100)).take);
    EXPECT_TRUE(w.judge(kPac, segment(pac + 1, f::kAck, pns + 101, 1000)).take);
  }
  std::uint32_t pns_next() const { return pns + 101; }
};

}  // namespace
}  // namespace pptp::stream
