// High availability's daemon side (docs/ha.md): what a call becomes on the sync link, what
// a replicated call becomes in the fast path, the key file and the link's addresses.
#include "alg/daemon/ha_node.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tests/support/packets.hpp"

namespace pptp::daemon {
namespace {

using test::addr;

struct OneCall {
  track::ControlConnection c;
  track::Call call;
  gateway::CallRecord record;
  nat::CallMapping m;
  OneCall() {
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

TEST(HaNode, AMappedCallBecomesItsRecordAndItsBindingBack) {
  OneCall o;
  auto s = call_state(o.c, o.call, o.record, &o.m, 1'000'000);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->key.pns, o.c.pns);
  EXPECT_EQ(s->key.pac, o.c.pac);
  EXPECT_EQ(s->key.pns_call_id, 7);
  EXPECT_EQ(s->outside_call_id, 8);
  EXPECT_EQ(s->pac_call_id, 100);
  EXPECT_EQ(s->verdict, sync::PolicyVerdict::NoPolicy);
  EXPECT_EQ(s->updated_ms - s->started_ms, 2500u);
  // Streams that never saw a SYN are not at a known boundary.
  EXPECT_FALSE(s->positions_known);

  const nat::CallBinding b = binding_of(*s);
  EXPECT_EQ(b.server, o.c.pac.address);
  EXPECT_EQ(b.inside, o.c.pns.address);
  EXPECT_EQ(b.outside, addr("203.0.113.1"));
  EXPECT_EQ(b.inside_call_id, 7);
  EXPECT_EQ(b.outside_call_id, 8);
  EXPECT_EQ(b.server_call_id, 100);
  EXPECT_TRUE(b.translated());
}

TEST(HaNode, ACallWithoutBothCallIdsOrAMappingIsNotPublished) {
  OneCall o;
  EXPECT_FALSE(call_state(o.c, o.call, o.record, nullptr, 1));
  o.call.pac_call_id.reset();
  EXPECT_FALSE(call_state(o.c, o.call, o.record, &o.m, 1));
}

TEST(HaNode, TheKeyFileIsItsBytesAndAShortOneIsRefused) {
  const std::string path = ::testing::TempDir() + "/ha_key_test";
  { std::ofstream(path) << "0123456789abcdef\n"; }
  auto key = read_key_file(path);
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(key->size(), 16u);
  { std::ofstream(path) << "short\n"; }
  EXPECT_FALSE(read_key_file(path));
  std::remove(path.c_str());
  EXPECT_FALSE(read_key_file(path));
}

TEST(HaNode, TheSyncAddressesAreIpv4WithAPort) {
  auto e = parse_ipv4_endpoint("192.0.2.1:1724");
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(e->address, addr("192.0.2.1"));
  EXPECT_EQ(e->port, 1724);
  EXPECT_FALSE(parse_ipv4_endpoint("[::1]:1724"));
  EXPECT_FALSE(parse_ipv4_endpoint("192.0.2.1"));
}

}  // namespace
}  // namespace pptp::daemon
