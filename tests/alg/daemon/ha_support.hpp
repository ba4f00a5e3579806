// A replicated call and a node on the loopback for the HA daemon tests (ha_node_test.cpp,
// ha_healing_test.cpp).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

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
                                         int port = 20000 + static_cast<int>(::getpid() % 20000)) {
  // Per process: ctest runs the tests of this file in parallel processes, and one writing
  // the key while another reads it made the reader see a short key.
  const std::string key = ::testing::TempDir() + "/ha_state_test_key_" + std::to_string(::getpid());
  { std::ofstream(key) << "0123456789abcdef\n"; }
  HaOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port);
  o.peer = "127.0.0.1:" + std::to_string(port + 1);
  o.key_file = key;
  o.state_file = state_file;
  auto node = HaNode::open(o, io, std::move(log), [] { return 1.0; });
  std::remove(key.c_str());  // read at the open
  EXPECT_TRUE(node) << (node ? "" : node.error());
  return node ? std::move(*node) : nullptr;
}

// The peer of a node opened with open_node(io, ..., port): a channel end of node 1 on the
// node's peer address, played by the test. Ports apart from the other tests' (20000-40000),
// and a pair per process (ctest runs tests in parallel processes): the peer's is bound too.
struct LoopbackPeer {
  static int port_for_test() { return 45000 + 2 * static_cast<int>(::getpid() % 7500); }
  explicit LoopbackPeer(int port)
      : link(sync::UdpLink::open({pptp::test::addr("127.0.0.1"), static_cast<std::uint16_t>(port + 1)},
                                 {pptp::test::addr("127.0.0.1"), static_cast<std::uint16_t>(port)})),
        end(options(), 1) {}
  static sync::ChannelOptions options() {
    sync::ChannelOptions o = node_options(1);
    const std::string key = "0123456789abcdef";  // open_node's
    o.key.assign(key.begin(), key.end());
    return o;
  }
  // Rounds of the peer's datagrams to the node and back, the node's loop run between.
  void exchange_with(boost::asio::io_context& io, double from, int rounds = 10) {
    for (int round = 0; round < rounds; ++round) {
      end.tick(from + round);
      for (const auto& d : end.take_outgoing()) link->send(d);
      io.run_for(std::chrono::milliseconds(20));
      link->receive([&](pptp::Bytes d) { end.receive(d, from + round); });
    }
  }
  Result<sync::UdpLink, std::string> link;
  sync::ChannelEnd end;
};

}  // namespace pptp::daemon::test
