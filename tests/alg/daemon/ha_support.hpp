// A replicated call, a node on the loopback and a peer played beside it for the HA daemon
// tests (ha_node_test.cpp, ha_healing_test.cpp, ha_heads_test.cpp, ha_retake_test.cpp).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "alg/daemon/ha_node.hpp"
#include "sync/record.hpp"
#include "sync/udp_link.hpp"
#include "tests/gateway/harness.hpp"
#include "tests/support/packets.hpp"

namespace pptp::daemon::test {

// One mapped call of ours on one control connection.
struct OneCall {
  track::ControlConnection c;
  track::Call call;
  gateway::CallRecord record;
  nat::CallMapping m;
  OneCall() {
    using pptp::test::addr;
    c.id = 3;
    c.pns = {addr("192.0.2.11"), 40001};
    c.pac = {addr("198.51.100.2"), 1723};
    call.pns_call_id = 7;
    call.pac_call_id = 100;
    call.opened_at = 10;
    call.last_activity = 12.5;
    m = nat::CallMapping{3, c.pns.address, addr("203.0.113.1"), c.pac.address, 7, 8};
  }
};

inline sync::CallState replicated(std::uint16_t port, std::uint16_t pns_call_id, std::uint16_t outside_call_id,
                                  sync::PolicyVerdict verdict = sync::PolicyVerdict::NoPolicy) {
  sync::CallState s;
  s.key = {{pptp::test::addr("192.0.2.11"), port}, {pptp::test::addr("198.51.100.2"), 1723}, pns_call_id};
  s.outside = pptp::test::addr("198.51.100.1");
  s.pac_call_id = 500;
  s.outside_call_id = outside_call_id;
  s.verdict = verdict;
  return s;
}

// Two channel ends in one process: what each sends, the other receives, until quiet.
inline void exchange(sync::ChannelEnd& a, sync::ChannelEnd& b, double now) {
  for (int round = 0; round < 8; ++round) {
    a.tick(now);
    b.tick(now);
    for (const auto& d : a.take_outgoing()) b.receive(d, now);
    for (const auto& d : b.take_outgoing()) a.receive(d, now);
  }
}

inline sync::ChannelOptions node_options(std::uint8_t node) {
  sync::ChannelOptions o;
  o.node = node;
  o.key.assign(32, 0x5a);
  return o;
}

// One run of a node on the loopback (its peer, at port + 1, never answers unless the test
// plays it), keeping its calls in `state_file`.
inline std::unique_ptr<HaNode> open_node(boost::asio::io_context& io, const std::string& state_file,
                                         std::shared_ptr<spdlog::logger> log = gateway::harness::quiet(),
                                         int port = 20000 + static_cast<int>(::getpid() % 20000),
                                         HaNode::Clock clock = [] { return 1.0; }) {
  // Per process: ctest runs the tests of this file in parallel processes, and one writing
  // the key while another reads it made the reader see a short key.
  const std::string key = ::testing::TempDir() + "/ha_state_test_key_" + std::to_string(::getpid());
  { std::ofstream(key) << "0123456789abcdef\n"; }
  HaOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.peer = "127.0.0.1:" + std::to_string(port + 1);
  o.key_file = key;
  o.state_file = state_file;
  auto node = HaNode::open(o, io, std::move(log), std::move(clock));
  std::remove(key.c_str());  // read at the open
  EXPECT_TRUE(node) << (node ? "" : node.error());
  return node ? std::move(*node) : nullptr;
}

// A peer played for a node opened at `port` (open_node): node 1's channel end behind a link
// at port + 1, with open_node's key.
struct PlayedPeer {
  sync::UdpLink link;
  sync::ChannelEnd end;
  double now = 0;
  // Rounds of the peer's datagrams to the node and the node's back, its io run between.
  void exchange(boost::asio::io_context& io, int rounds) {
    for (int round = 0; round < rounds; ++round) {
      now += 1;
      end.tick(now);
      for (const auto& d : end.take_outgoing()) link.send(d);
      io.run_for(std::chrono::milliseconds(20));
      link.receive([&](pptp::Bytes d) { end.receive(d, now); });
    }
  }
};

inline std::unique_ptr<PlayedPeer> play_peer(int port) {
  const auto loopback = pptp::test::addr("127.0.0.1");
  auto link = sync::UdpLink::open({loopback, static_cast<std::uint16_t>(port + 1)},
                                  {loopback, static_cast<std::uint16_t>(port)});
  EXPECT_TRUE(link) << (link ? "" : link.error());
  if (!link) return nullptr;
  sync::ChannelOptions o = node_options(1);
  const std::string key = "0123456789abcdef";
  o.key.assign(key.begin(), key.end());
  return std::make_unique<PlayedPeer>(PlayedPeer{std::move(*link), sync::ChannelEnd(o, 1)});
}

// A node and its peer played beside it, not heard until an exchange. Ports apart from
// open_node's default ones (20000-40000), two a process: the peer's is bound here too, and
// ctest's parallel processes often have consecutive pids.
struct PeeredNode {
  std::unique_ptr<HaNode> node;
  std::unique_ptr<PlayedPeer> peer;
};
inline PeeredNode open_peered(boost::asio::io_context& io, HaNode::Clock clock = [] { return 1.0; }) {
  const int port = 45000 + 2 * static_cast<int>(::getpid() % 7500);
  PeeredNode p{open_node(io, "", gateway::harness::quiet(), port, std::move(clock)), nullptr};
  if (p.node) p.peer = play_peer(port);
  return p;
}

// A node and its played peer, opened for each test (TEST_F); a suite derives its own name
// (gtest keeps TEST and TEST_F out of one suite).
class PeeredTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node && peer); }
  boost::asio::io_context io;
  double node_now = 1.0;  // the node's clock (s)
  PeeredNode peered = open_peered(io, [this] { return node_now; });
  std::unique_ptr<HaNode>& node = peered.node;
  std::unique_ptr<PlayedPeer>& peer = peered.peer;
};

}  // namespace pptp::daemon::test
