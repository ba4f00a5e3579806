// A tracker driven message by message over one TCP control connection, and an observer
// that records what it was told. Shared by the tracker tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/track/packet_path.hpp"
#include "alg/track/tracker.hpp"
#include "nat/checksum.hpp"
#include "tests/support/packets.hpp"

namespace pptp::track::tracker_test {

using wire::ControlMessageBody;
using wire::Endpoint;
namespace tcp_flags = wire::tcp_flags;

inline wire::OutgoingCallReply outgoing_reply(std::uint16_t call_id, std::uint16_t peer, std::uint8_t result = 1) {
  wire::OutgoingCallReply r;
  r.call_id = call_id;
  r.peer_call_id = peer;
  r.result_code = result;
  return r;
}
inline wire::IncomingCallReply incoming_reply(std::uint16_t call_id, std::uint16_t peer) {
  wire::IncomingCallReply r;
  r.call_id = call_id;
  r.peer_call_id = peer;
  r.result_code = 1;
  return r;
}

struct Recorder : TrackerObserver {
  std::vector<AnomalyEvent> anomalies;
  std::vector<std::string> closed_calls;  // close reasons
  std::vector<std::string> closed_connections;
  bool detail_wanted = true;  // what wants_anomaly_detail answers
  void on_anomaly(const AnomalyEvent& e) override { anomalies.push_back(e); }
  bool wants_anomaly_detail(Anomaly) const override { return detail_wanted; }
  void on_call_closed(const ControlConnection&, const Call& c) override {
    closed_calls.push_back(c.close_reason);
  }
  void on_connection_closed(const ControlConnection& c) override {
    closed_connections.push_back(c.close_reason);
  }
  std::size_t count(Anomaly a) const {
    return std::count_if(anomalies.begin(), anomalies.end(), [&](const auto& e) { return e.anomaly == a; });
  }
};

// One TCP control connection between a PNS and a PAC, driven message by message.
struct Link {
  Tracker& tracker;
  Endpoint pns, pac;
  std::uint32_t seq[2] = {1000, 50000};
  double time = 0;

  PacketOutcome packet(const std::vector<std::uint8_t>& p) { return handle_ipv4(tracker, time += 0.01, p); }
  void handshake() {
    packet(test::tcp(pns, pac, seq[0]++, tcp_flags::kSyn));
    packet(test::tcp(pac, pns, seq[1]++, tcp_flags::kSyn | tcp_flags::kAck));
  }
  PacketOutcome send(Direction d, const ControlMessageBody& body) {
    const auto data = test::bytes_of(body);
    const int i = static_cast<int>(d);
    const auto out = d == Direction::PnsToPac
                         ? packet(test::tcp(pns, pac, seq[i], tcp_flags::kAck | tcp_flags::kPsh, data))
                         : packet(test::tcp(pac, pns, seq[i], tcp_flags::kAck | tcp_flags::kPsh, data));
    seq[i] += static_cast<std::uint32_t>(data.size());
    return out;
  }
  void start() {
    handshake();
    send(Direction::PnsToPac, wire::StartControlConnectionRequest{});
    wire::StartControlConnectionReply rp;
    rp.result_code = 1;
    send(Direction::PacToPns, rp);
  }
  void outgoing_call(std::uint16_t pns_id, std::uint16_t pac_id, std::uint8_t result = 1) {
    wire::OutgoingCallRequest rq;
    rq.call_id = pns_id;
    send(Direction::PnsToPac, rq);
    send(Direction::PacToPns, outgoing_reply(pac_id, pns_id, result));
  }
  // An incoming call placed by the PAC and accepted by the PNS, awaiting Incoming-Call-Connected.
  void incoming_call(std::uint16_t pac_id, std::uint16_t pns_id) {
    wire::IncomingCallRequest rq;
    rq.call_id = pac_id;
    send(Direction::PacToPns, rq);
    send(Direction::PnsToPac, incoming_reply(pns_id, pac_id));
  }
  GreOutcome gre_to_pac(std::uint16_t key, std::vector<std::uint8_t> ppp = {0xff, 0x03, 0x00, 0x21, 0x45}) {
    return packet(test::gre(pns.address, pac.address, key, 1, ppp)).gre;
  }
  GreOutcome gre_to_pns(std::uint16_t key, std::vector<std::uint8_t> ppp = {0xff, 0x03, 0x00, 0x21, 0x45}) {
    return packet(test::gre(pac.address, pns.address, key, 1, ppp)).gre;
  }
  ControlConnection* connection() {
    ControlConnection* found = nullptr;
    tracker.for_each_connection([&](const ControlConnection& c) {
      if (c.pns == pns && c.pac == pac) found = const_cast<ControlConnection*>(&c);
    });
    return found;
  }
};

// A TCP segment of `l` with an acknowledgment number and a window, and a right checksum.
inline std::vector<std::uint8_t> segment(const Link& l, Direction d, std::uint32_t seq, std::uint8_t flags,
                                         std::uint32_t ack, const std::vector<std::uint8_t>& data = {}) {
  auto p = d == Direction::PnsToPac ? test::tcp(l.pns, l.pac, seq, flags, data) : test::tcp(l.pac, l.pns, seq, flags, data);
  store_u32(&p[28], ack);
  store_u16(&p[34], 8192);
  nat::update_tcp_checksum(p, 20);
  return p;
}

class TrackerTest : public ::testing::Test {
 protected:
  Recorder rec;
  Tracker tracker{rec};
  Link link{tracker, {test::addr("192.0.2.11"), 40001}, {test::addr("198.51.100.2"), 1723}};
};

}  // namespace pptp::track::tracker_test
