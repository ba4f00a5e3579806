// High availability's daemon side (docs/ha.md): what a call becomes on the sync link, what
// a replicated call becomes in the fast path, the key file and the link's addresses.
#include "alg/daemon/ha_node.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include <sys/stat.h>
#include <unistd.h>

#include "sync/table_file.hpp"
#include "tests/alg/daemon/ha_support.hpp"
#include "tests/gateway/harness.hpp"
#include "tests/support/packets.hpp"

namespace pptp::daemon {
namespace {

using pptp::test::addr;
using test::open_node;
using test::exchange;
using test::node_options;
using test::OneCall;
using test::replicated;

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

TEST(HaNode, TheSyncEndpointsAreOneAddressOfTheLinkAndAnotherUnicastPeer) {
  const auto error_of = [](const char* listen, const char* peer) {
    return sync_endpoints_error(*parse_ipv4_endpoint(listen), *parse_ipv4_endpoint(peer));
  };
  EXPECT_EQ(error_of("192.0.2.1:1724", "192.0.2.2:1724"), std::nullopt);
  EXPECT_EQ(error_of("127.0.0.1:1724", "127.0.0.1:1725"), std::nullopt);  // a pair on one host (the tests)
  const auto refused = [&](const char* listen, const char* peer, const char* why) {
    const auto e = error_of(listen, peer);
    ASSERT_TRUE(e) << listen << " " << peer;
    EXPECT_NE(e->find(why), std::string::npos) << *e;
  };
  refused("0.0.0.0:1724", "192.0.2.2:1724", "every interface");
  refused("224.0.0.18:1724", "192.0.2.2:1724", "ha-listen 224.0.0.18:1724 is not a unicast");
  refused("192.0.2.1:1724", "0.0.0.0:1724", "ha-peer 0.0.0.0:1724 is not a unicast");
  refused("192.0.2.1:1724", "255.255.255.255:1724", "is not a unicast");
  refused("192.0.2.1:1724", "239.1.1.1:1724", "is not a unicast");
  refused("192.0.2.1:1724", "192.0.2.1:1724", "is ha-listen");
  // The daemon's open refuses them before it reads the key or binds.
  boost::asio::io_context io;
  HaOptions o;
  o.listen = "0.0.0.0:1724";
  o.peer = "192.0.2.2:1724";
  o.key_file = "/nonexistent/ha.key";
  const auto node = HaNode::open(o, io, gateway::harness::quiet(), [] { return 1.0; });
  ASSERT_FALSE(node);
  EXPECT_NE(node.error().find("ha-listen 0.0.0.0 would take sync datagrams on every interface"), std::string::npos)
      << node.error();
}

TEST(HaNode, APromotionTakesOverTheCallsWhoseControlConnectionIsAliveAndAllowed) {
  sync::Replica replica;
  replica.put(replicated(40001, 7, 0));
  replica.put(replicated(40002, 7, 2));                                  // its connection is gone
  replica.put(replicated(40003, 7, 4, sync::PolicyVerdict::Deny));       // denied
  replica.put(replicated(40004, 9, 6, sync::PolicyVerdict::Allow));
  const auto alive = [](const sync::CallKey& k) { return k.pns.port != 40002; };
  const std::vector<sync::CallState> taken = calls_to_take_over(replica, alive);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].key.pns.port, 40001);
  EXPECT_EQ(taken[1].key.pns.port, 40004);
  // No way to tell (no ctnetlink): every allowed call is taken over.
  EXPECT_EQ(calls_to_take_over(replica, nullptr).size(), 3u);
}

// The peer cleared a call, the delete was not replicated before the failover, and it gave
// that outside Call ID to a new call: the replica holds both. The newer is taken over; the
// stale one gets no element (its client's GRE meets no call) and no second claim on the ID.
TEST(HaNode, OfTwoRecordsNamingOneOutsideCallIdThePromotionTakesTheNewer) {
  sync::Replica replica;
  sync::CallState stale = replicated(40001, 7, 8);
  stale.updated_ms = 1000;
  sync::CallState newer = replicated(40009, 5, 8);
  newer.updated_ms = 2000;
  replica.put(newer);
  replica.put(stale);
  replica.put(replicated(40002, 7, 10));
  const std::vector<sync::CallState> taken = calls_to_take_over(replica, nullptr);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0], newer);
  EXPECT_EQ(taken[1].outside_call_id, 10);
  // The same ID toward another server is another element: both stay.
  sync::CallState elsewhere = replicated(40003, 7, 8);
  elsewhere.key.pac.address = addr("198.51.100.3");
  replica.put(elsewhere);
  EXPECT_EQ(calls_to_take_over(replica, nullptr).size(), 3u);
}

TEST(HaNode, ATakenOverCallIsFoundOnItsControlConnectionByEachOfItsCallIds) {
  using Side = gateway::CallIdSide;
  TakenOverCalls t;
  sync::CallState second = replicated(40001, 9, 2);
  second.pac_call_id = 501;
  t.take({replicated(40001, 7, 0), second, replicated(40004, 9, 6)});
  const wire::Endpoint pac{addr("198.51.100.2"), 1723};
  const wire::Endpoint a{addr("192.0.2.11"), 40001}, b{addr("192.0.2.11"), 40004};
  const auto outside_of = [](const std::optional<gateway::TakenOverIds>& ids) {
    return ids ? std::optional(ids->outside_call_id) : std::nullopt;
  };
  EXPECT_EQ(outside_of(t.find(a, pac, Side::Pns, 7)), 0);
  EXPECT_EQ(outside_of(t.find(b, pac, Side::Pns, 9)), 6);
  EXPECT_EQ(outside_of(t.find(a, pac, Side::Pns, 9)), 2);  // the connection's other call
  EXPECT_FALSE(t.find(a, pac, Side::Pns, 8));
  EXPECT_FALSE(t.find({addr("192.0.2.11"), 40002}, pac, Side::Pns, 7));  // another connection
  // By the server's Call ID and by the outside one: the connection's own calls only.
  const auto by_pac = t.find(a, pac, Side::Pac, 501);
  ASSERT_TRUE(by_pac);
  EXPECT_EQ(by_pac->pns_call_id, 9);
  EXPECT_EQ(by_pac->outside_call_id, 2);
  const auto by_outside = t.find(b, pac, Side::Outside, 6);
  ASSERT_TRUE(by_outside);
  EXPECT_EQ(by_outside->pns_call_id, 9);
  EXPECT_EQ(by_outside->pac_call_id, 500);
  EXPECT_FALSE(t.find(a, pac, Side::Outside, 6));  // b's outside Call ID, not a's
  EXPECT_FALSE(t.find(a, {addr("198.51.100.3"), 1723}, Side::Pac, 500));  // another server
  ASSERT_EQ(t.bindings().size(), 3u);
  EXPECT_EQ(t.bindings()[2].outside_call_id, 6);
  t.clear();
  EXPECT_FALSE(t.find(a, pac, Side::Pns, 7));
}

// A connection resumes at the latest boundaries replicated for any of its calls; a
// connection none of whose calls has them is resumed by a scan; an unknown one is not resumed.
TEST(HaNode, ATakenOverConnectionResumesAtItsLatestReplicatedPositions) {
  sync::CallState older = replicated(40001, 7, 0), newer = replicated(40001, 9, 2);
  older.positions_known = newer.positions_known = true;
  older.updated_ms = 100;
  older.next_sequence = {1000, 5000};
  newer.updated_ms = 200;
  newer.next_sequence = {1168, 5032};
  sync::CallState unknown = replicated(40002, 7, 4);
  TakenOverCalls t;
  t.take({older, newer, unknown});
  const wire::Endpoint pac{addr("198.51.100.2"), 1723};
  const auto latest = t.positions({addr("192.0.2.11"), 40001}, pac);
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, (track::ResumePositions{1168, 5032}));
  const auto none_known = t.positions({addr("192.0.2.11"), 40002}, pac);
  ASSERT_TRUE(none_known);
  EXPECT_EQ(*none_known, track::ResumePositions{});
  EXPECT_FALSE(t.positions({addr("192.0.2.11"), 40003}, pac));
}

// ra publishes a call; rb takes it over (a failover) and republishes it as its own.
struct TakenOverByRb {
  sync::ChannelEnd ra{node_options(0), 1}, rb{node_options(1), 1};
  Republished republished;
  std::vector<sync::CallState> taken;
  TakenOverByRb() {
    exchange(ra, rb, 1);
    ra.publish_add(replicated(40001, 7, 0));
    exchange(ra, rb, 2);
    taken = calls_to_take_over(rb.replica(), nullptr);
    republished.publish(rb, taken);
  }
};

TEST(HaNode, ACallTakenOverIsInTheSnapshotOfTheFirstNodeBackAsStandbyUntilItEnds) {
  // ra publishes its call; rb takes it over at a failover; ra's daemon comes back (a new
  // incarnation): its snapshot from rb must hold the call, or a second failover (back to
  // ra) would lose it.
  TakenOverByRb t;
  auto& [ra, rb, republished, taken] = t;
  ASSERT_EQ(taken.size(), 1u);
  sync::ChannelEnd ra_again(node_options(0), 2);
  exchange(ra_again, rb, 3);
  ASSERT_TRUE(ra_again.synced());
  ASSERT_EQ(ra_again.replica().size(), 1u);
  EXPECT_EQ(ra_again.replica().find(taken[0].key)->outside_call_id, 0);

  // Still offloaded on rb: kept. Gone from rb's gateway (ended, idled out): deleted.
  EXPECT_EQ(republished.retire(rb, {binding_of(taken[0])}, 0, 60), 0u);
  exchange(ra_again, rb, 4);
  EXPECT_EQ(ra_again.replica().size(), 1u);
  EXPECT_EQ(republished.retire(rb, {}, 0, 60), 1u);
  EXPECT_TRUE(republished.empty());
  exchange(ra_again, rb, 5);
  EXPECT_EQ(ra_again.replica().size(), 0u);
}

// A demotion hands its taken-over calls over (their elements removed, no longer adopted:
// the gateway no longer offloads them): their records stay published for the peer to take
// over, until the peer's promotion since or the hold time; never deleted at the demotion
// itself, which lost the calls at the failover back (s14: ha_retired before ha_promoted).
TEST(HaNode, ADemotionsTakenOverRecordsStayUntilThePeerPromotesOrTheHoldEnds) {
  TakenOverByRb t;
  auto& [ra, rb, republished, taken] = t;
  ASSERT_EQ(taken.size(), 1u);
  rb.set_active(true);
  rb.set_epoch(1);
  sync::ChannelEnd ra_again(node_options(0), 2);  // ra back as standby
  exchange(ra_again, rb, 3);
  ASSERT_EQ(ra_again.replica().size(), 1u);

  // rb demotes at t=100: no longer offloaded there, the record stays.
  rb.set_active(false);
  EXPECT_EQ(republished.hand_over(std::max(rb.epoch(), rb.peer_epoch()), 100), std::vector{binding_of(taken[0])});
  EXPECT_EQ(republished.retire(rb, {}, 100.5, 60), 0u);
  exchange(ra_again, rb, 4);
  EXPECT_EQ(ra_again.replica().size(), 1u);
  // ra promotes (a higher epoch): it took the call; rb's record goes.
  ra_again.set_active(true);
  ra_again.set_epoch(2);
  exchange(ra_again, rb, 5);
  EXPECT_EQ(republished.retire(rb, {}, 101, 60), 1u);
  EXPECT_TRUE(republished.empty());
  exchange(ra_again, rb, 6);
  EXPECT_EQ(ra_again.replica().size(), 0u);
}

TEST(HaNode, AHandedOverRecordWithoutANewPromotionStaysForTheHoldOnly) {
  // A split brain's healing: the peer was active already, at the highest epoch; it takes
  // the calls without a new epoch. The records stay the hold time, then go.
  TakenOverByRb t;
  auto& [ra, rb, republished, taken] = t;
  ASSERT_EQ(taken.size(), 1u);
  ra.set_active(true);
  ra.set_epoch(5);
  exchange(ra, rb, 3);
  ASSERT_TRUE(rb.peer_active());
  EXPECT_EQ(republished.hand_over(std::max(rb.epoch(), rb.peer_epoch()), 100), std::vector{binding_of(taken[0])});
  EXPECT_TRUE(republished.hand_over(5, 130).empty());  // once: the first time counts
  EXPECT_EQ(republished.retire(rb, {}, 159.9, 60), 0u);
  EXPECT_EQ(republished.retire(rb, {}, 160, 60), 1u);
  // Taken again before the hold ends (a failover back): carried here, judged by the elements.
  republished.publish(rb, taken);
  EXPECT_EQ(republished.hand_over(5, 200).size(), 1u);
  republished.publish(rb, taken);
  EXPECT_EQ(republished.retire(rb, {binding_of(taken[0])}, 1000, 60), 0u);
  EXPECT_EQ(republished.retire(rb, {}, 1000, 60), 1u);
}

TEST(HaNode, APromotedNodeGivesNoNewCallTheOutsideCallIdOfACallItTookOver) {
  // Node 0 takes back, at a second failover, a call it had set up itself (outside Call ID
  // 8, of its own half: the even/odd split does not keep it apart). Another client then
  // asks the same server for Call ID 8: the server would hear one ID for two calls.
  gateway::harness::Harness h;
  h.gw.set_node_half(0);
  sync::CallState s = replicated(40001, 9, 8);
  s.key.pac.address = gateway::harness::kServer;
  s.outside = gateway::harness::kPublic;
  sync::Replica replica;
  replica.put(s);
  std::vector<nat::CallBinding> bindings;
  for (const sync::CallState& t : calls_to_take_over(replica, nullptr)) bindings.push_back(binding_of(t));
  ASSERT_EQ(h.gw.adopt_offloaded(adoption_counts(bindings), h.now), 1u);

  gateway::harness::Client b{{addr("192.0.2.12"), 40002}};
  h.start(b);
  gateway::harness::Packet p = b.to_pac(pptp::test::bytes_of(gateway::harness::ocrq(8)));
  const gateway::Verdict v = h.run(p);
  ASSERT_EQ(v.action, gateway::Action::Accept);
  EXPECT_TRUE(v.modified);
  EXPECT_NE(gateway::harness::tcp_u16(p, 12), 8);
  EXPECT_EQ(gateway::harness::tcp_u16(p, 12) % 2, 0);  // still of node 0's half
}

// A node's first run publishes `o`'s call and is killed (its table in `state`); the second
// run, as it starts.
std::unique_ptr<HaNode> restarted(boost::asio::io_context& io, const std::string& state, OneCall& o) {
  std::remove(state.c_str());
  {
    auto first = open_node(io, state);
    if (!first) return nullptr;
    first->call_changed(o.c, o.call, o.record, &o.m);
    first->tick();  // the table goes to the state file
  }  // killed
  return open_node(io, state);
}

TEST(HaNode, ARestartedNodePublishesAgainTheCallsOfItsPreviousRunThatItAdopted) {
  const std::string state = ::testing::TempDir() + "/ha_state_test_calls";
  OneCall o;
  boost::asio::io_context io;
  auto second = restarted(io, state, o);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status_json()["published_calls"], 0);
  const nat::CallBinding adopted = binding_of(*call_state(o.c, o.call, o.record, &o.m, 1));
  nat::CallBinding other = adopted;
  other.outside_call_id = 10;
  EXPECT_EQ(second->republish_adopted({other}), 0u);  // not a call of the previous run
  EXPECT_EQ(second->republish_adopted({adopted, other}), 1u);
  EXPECT_EQ(second->status_json()["published_calls"], 1);
  EXPECT_TRUE(second->republishing());  // retired once its elements go
  // A failover away from the restarted node (standby by role: the notify script's demote):
  // its adopted call's elements go and it is handed over, as a taken-over call's would.
  const std::vector<nat::CallBinding> gone = second->demote();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], adopted);
  EXPECT_TRUE(second->demote().empty());  // once
  EXPECT_EQ(second->status_json()["published_calls"], 1);  // kept for the peer
  second.reset();
  std::remove(state.c_str());
}

// The active daemon restarted while its node stayed master (docs/ha.md, "A restarted active
// daemon"): once promoted (the notify script's check), the calls it adopted at its start are
// carried as taken-over ones: their Call-ID fields translated, their ends heard. Standby,
// they are not (the peer's, if it promotes). The promotion installs only the peer's calls.
TEST(HaNode, ARestartedNodePromotedCarriesTheCallsItAdoptedAsTakenOver) {
  const std::string state = ::testing::TempDir() + "/ha_state_test_resume";
  OneCall o;
  boost::asio::io_context io;
  auto second = restarted(io, state, o);
  ASSERT_TRUE(second);
  const nat::CallBinding adopted = binding_of(*call_state(o.c, o.call, o.record, &o.m, 1));
  ASSERT_EQ(second->republish_adopted({adopted}), 1u);
  EXPECT_FALSE(second->taken_over_call(o.c, gateway::CallIdSide::Pns, 7));  // standby
  auto installed = second->promote(true, nullptr);
  ASSERT_TRUE(installed);
  EXPECT_TRUE(installed->empty());  // already installed and adopted at the start
  const auto ids = second->taken_over_call(o.c, gateway::CallIdSide::Pns, 7);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->outside_call_id, 8);  // a Call-Clear-Request naming 7 reaches the server as 8
  EXPECT_TRUE(second->holds_taken_over(o.c));
  const auto ended = second->end_taken_over(o.c, gateway::TakenOverEnd{7});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0], adopted);
  second.reset();
  std::remove(state.c_str());
}

// The state file holds user names: owner-only, and a link put where it is written aside is
// not followed (the table is not saved instead).
TEST(HaNode, TheStateFileIsTheOwnersOnlyAndALinkInItsPlaceIsNotFollowed) {
  const std::string state = ::testing::TempDir() + "/ha_state_test_mode";
  const std::string target = ::testing::TempDir() + "/ha_state_test_target";
  std::remove(state.c_str());
  std::remove((state + ".new").c_str());
  OneCall o;
  boost::asio::io_context io;
  {
    auto node = open_node(io, state);
    ASSERT_TRUE(node);
    node->call_changed(o.c, o.call, o.record, &o.m);
    node->tick();
  }
  struct stat st{};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::remove(state.c_str());
  { std::ofstream(target) << "x"; }
  ASSERT_EQ(::symlink(target.c_str(), (state + ".new").c_str()), 0);
  {
    auto node = open_node(io, state);
    ASSERT_TRUE(node);
    node->call_changed(o.c, o.call, o.record, &o.m);
    node->tick();
  }
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1);                          // the link's target untouched
  EXPECT_NE(::access(state.c_str(), F_OK), 0);       // nothing saved
  std::remove((state + ".new").c_str());
  std::remove(target.c_str());
}

// A file larger than any table is refused by its size, before it is read.
TEST(HaNode, AStateFileLargerThanAnyTableIsNotRead) {
  const std::string state = ::testing::TempDir() + "/ha_state_test_large";
  { std::ofstream(state) << "PHT1"; }
  ASSERT_EQ(::truncate(state.c_str(), static_cast<off_t>(sync::max_table_bytes() + 1)), 0);  // sparse
  OneCall o;
  gateway::harness::CapturedLog log;
  boost::asio::io_context io;
  auto node = open_node(io, state, log.log);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->republish_adopted({binding_of(*call_state(o.c, o.call, o.record, &o.m, 1))}), 0u);
  log.log->flush();
  EXPECT_EQ(log.lines_with("ha_state_unreadable file=" + state + " error=too_large"), 1u);
  node.reset();
  std::remove(state.c_str());
}

}  // namespace
}  // namespace pptp::daemon
