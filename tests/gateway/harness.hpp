// The router as the gateway tests see it: control connections in the forward hook, a
// public address, one server. Shared by the NAT and the policy tests.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"
#include "tests/support/packets.hpp"
#include "tests/support/router_view.hpp"

namespace pptp::gateway::harness {

using test::addr;
using Packet = std::vector<std::uint8_t>;
namespace flags = wire::tcp_flags;

using test::router::kPublic;
using test::router::kServer;
using test::router::checksummed;
using test::router::Client;

inline std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// A logger whose lines a test reads back.
struct CapturedLog {
  std::ostringstream text;
  std::shared_ptr<spdlog::logger> log =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
  std::size_t lines_with(const std::string& needle) const {
    std::size_t n = 0;
    std::istringstream in(text.str());
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
};

struct Harness {
  explicit Harness(GatewayOptions o = {}, std::shared_ptr<spdlog::logger> log = quiet())
      : gw(std::move(o), std::move(log)) {}
  Gateway gw;
  double now = 1;
  std::uint64_t next_id = 1;

  Verdict run(Packet& p) {
    PacketMeta meta{now += 0.01, next_id++, kPublic};
    return gw.process(p, meta);
  }
  // Sends and expects an unmodified accept.
  void pass(Packet p) {
    const Packet before = p;
    const Verdict v = run(p);
    ASSERT_EQ(v.action, Action::Accept);
    ASSERT_EQ(p, before);
  }
  void start(Client& c) {
    pass(c.to_pac({}, flags::kSyn));
    pass(c.to_pns({}, flags::kSyn | flags::kAck));
    pass(c.to_pac(test::bytes_of(wire::StartControlConnectionRequest{})));
    wire::StartControlConnectionReply reply;
    reply.result_code = 1;
    pass(c.to_pns(test::bytes_of(reply)));
  }
};

inline std::uint16_t tcp_u16(const Packet& p, std::size_t message_offset) { return load_u16(&p[40 + message_offset]); }

inline wire::OutgoingCallRequest ocrq(std::uint16_t call_id) {
  wire::OutgoingCallRequest r;
  r.call_id = call_id;
  return r;
}

inline wire::OutgoingCallReply ocrp(std::uint16_t call_id, std::uint16_t peer) {
  wire::OutgoingCallReply r;
  r.call_id = call_id;
  r.peer_call_id = peer;
  r.result_code = 1;
  return r;
}

// `c` starts and opens a call (Call ID `id`, the first on its address: not translated) that
// the server answers with `server_id`; the call then idles out while its connection lives
// (the options' timeouts.call_idle must be under 10 s).
inline void call_then_idle_out(Harness& h, Client& c, std::uint16_t id, std::uint16_t server_id) {
  h.start(c);
  h.pass(c.to_pac(test::bytes_of(ocrq(id))));
  h.pass(c.to_pns(test::bytes_of(ocrp(server_id, id))));
  h.gw.expire(h.now += 10);
  ASSERT_EQ(h.gw.tracker().call_count(), 0u);
}

inline wire::IncomingCallRequest icrq(std::uint16_t pac_call_id) {
  wire::IncomingCallRequest r;
  r.call_id = pac_call_id;
  return r;
}

inline wire::IncomingCallReply icrp(std::uint16_t call_id, std::uint16_t pac_call_id, std::uint8_t result = 1) {
  wire::IncomingCallReply r;
  r.call_id = call_id;
  r.peer_call_id = pac_call_id;
  r.result_code = result;
  return r;
}

// Bytes [from, to) of a message: the part of it one segment carries.
inline Packet slice(const Packet& message, std::size_t from, std::size_t to) {
  return Packet(message.begin() + static_cast<std::ptrdiff_t>(from), message.begin() + static_cast<std::ptrdiff_t>(to));
}

// 168 bytes the gateway frames as Echo messages (nothing to translate) whose bytes 12-13 are
// `id`: where an Outgoing-Call-Request (or an Incoming-Call-Reply) has its Call ID. A
// client writes them where it had begun a request, to make the server read one naming `id`.
inline Packet echoes_with_id_at_12(std::uint16_t id) {
  Packet out;
  for (int i = 0; i < 9; ++i) {
    wire::EchoRequest e;
    if (i == 0) e.identifier = static_cast<std::uint32_t>(id) << 16;
    const Packet m = i < 3 ? test::bytes_of(e) : test::bytes_of(wire::EchoReply{});
    out.insert(out.end(), m.begin(), m.end());
  }
  return out;
}

}  // namespace pptp::gateway::harness
