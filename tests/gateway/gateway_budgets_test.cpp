// Budgets without a policy (docs/reliability.md): what a host that floods the gateway gets
// (its SYN dropped, its call set-up refused, its out-of-order data not kept), what the
// others keep (their connections and calls), and that memory stays flat under churn.
#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

GatewayOptions with_budgets(BudgetLimits limits) {
  GatewayOptions o;
  o.budgets = limits;
  return o;
}

class Budgeted : public ::testing::Test {
 protected:
  explicit Budgeted(BudgetLimits limits = {}) : h(with_budgets(limits)) {}
  Action send(Packet p) { return h.run(p).action; }
  std::uint64_t counter(const char* key) { return h.gw.status()["packets"][key].get<std::uint64_t>(); }
  // A SYN then a RST at the expected sequence number: the connection opens and ends.
  void syn_rst(Client& c) {
    ASSERT_EQ(send(c.to_pac({}, flags::kSyn)), Action::Accept);
    ASSERT_EQ(send(c.to_pac({}, flags::kRst)), Action::Accept);
  }

  Harness h;
  Client good{{addr("192.0.2.20"), 40000}};
};

TEST_F(Budgeted, SynRstChurnOnOneFourTupleLeavesNothingBehind) {
  Client churn{{addr("192.0.2.66"), 50000}};
  syn_rst(churn);
  const std::size_t after_one = h.gw.memory_bytes();
  for (int i = 0; i < 20000; ++i) {
    churn.pns_seq += 100000;  // each cycle a new connection: a new ISN
    syn_rst(churn);
  }
  EXPECT_EQ(h.gw.memory_bytes(), after_one);  // flat: one closed entry, no records
  EXPECT_EQ(h.gw.tracker().connection_count(), 1u);
  EXPECT_EQ(h.gw.tracker().closed_connection_count(), 1u);
  EXPECT_EQ(h.gw.connection_record(1), nullptr);  // the record died with its connection
  EXPECT_TRUE(h.gw.budgets().empty());
}

TEST_F(Budgeted, ClosedConnectionsFromManyPortsStayWithinTheirBound) {
  for (std::uint16_t port = 1; port <= track::kMaxClosedConnections + 500; ++port) {
    Client c{{addr("192.0.2.66"), port}};
    syn_rst(c);
  }
  EXPECT_EQ(h.gw.tracker().closed_connection_count(), track::kMaxClosedConnections);
  EXPECT_EQ(h.gw.tracker().connection_count(), track::kMaxClosedConnections);
  EXPECT_EQ(h.gw.memory_bytes(), track::kMaxClosedConnections * kClosedConnectionBytes);
}

TEST_F(Budgeted, ASynFloodFromManyPortsStopsAtTheHalfOpenBudgetAndOthersStillConnect) {
  const std::uint16_t syns = kDefaultSourceHalfOpen + 100;
  for (std::uint16_t port = 1; port <= syns; ++port) {
    Client c{{addr("192.0.2.66"), port}};
    const Action a = send(c.to_pac({}, flags::kSyn));
    EXPECT_EQ(a, port <= kDefaultSourceHalfOpen ? Action::Accept : Action::Drop) << port;
  }
  EXPECT_EQ(counter("budget_half_open_refused"), 100u);
  EXPECT_EQ(h.gw.tracker().connection_count(), kDefaultSourceHalfOpen);
  h.start(good);
  ASSERT_EQ(send(good.to_pac(test::bytes_of(ocrq(7)))), Action::Accept);
  EXPECT_EQ(send(good.to_pns(test::bytes_of(ocrp(100, 7)))), Action::Accept);
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
}

TEST_F(Budgeted, HalfOpenConnectionsTimeOutAndTheSourceMayConnectAgain) {
  for (std::uint16_t port = 1; port <= kDefaultSourceHalfOpen; ++port) {
    Client c{{addr("192.0.2.66"), port}};
    ASSERT_EQ(send(c.to_pac({}, flags::kSyn)), Action::Accept);
  }
  Client next{{addr("192.0.2.66"), 60000}};
  EXPECT_EQ(send(next.to_pac({}, flags::kSyn)), Action::Drop);
  h.gw.expire(h.now + track::kHalfOpenTimeout + 1);
  h.now += track::kHalfOpenTimeout + 1;
  next.pns_seq -= 1;
  EXPECT_EQ(send(next.to_pac({}, flags::kSyn)), Action::Accept);
  EXPECT_EQ(h.gw.tracker().closed_connection_count(), kDefaultSourceHalfOpen);
}

class SmallBudgets : public Budgeted {
 protected:
  SmallBudgets() : Budgeted(BudgetLimits{kDefaultMemoryBudgetMiB * kMiB, 2, 8, 2, 2000}) {}
};

TEST_F(SmallBudgets, AtItsConnectionBudgetASourcesNewSynIsDroppedUntilOneCloses) {
  Client one{{addr("192.0.2.66"), 1}}, two{{addr("192.0.2.66"), 2}}, three{{addr("192.0.2.66"), 3}};
  h.start(one);
  h.start(two);
  EXPECT_EQ(send(three.to_pac({}, flags::kSyn)), Action::Drop);
  EXPECT_EQ(counter("budget_connections_refused"), 1u);
  h.start(good);  // another host is not touched
  ASSERT_EQ(send(one.to_pac({}, flags::kRst)), Action::Accept);
  three.pns_seq -= 1;
  EXPECT_EQ(send(three.to_pac({}, flags::kSyn)), Action::Accept);
}

TEST_F(SmallBudgets, AtItsCallBudgetASourcesSetUpIsRefusedAndItsCallsKeepWorking) {
  h.start(good);
  ASSERT_EQ(send(good.to_pac(test::bytes_of(ocrq(1)))), Action::Accept);
  ASSERT_EQ(send(good.to_pns(test::bytes_of(ocrp(101, 1)))), Action::Accept);
  ASSERT_EQ(send(good.to_pac(test::bytes_of(ocrq(2)))), Action::Accept);
  ASSERT_EQ(send(good.to_pns(test::bytes_of(ocrp(102, 2)))), Action::Accept);
  EXPECT_EQ(send(good.to_pac(test::bytes_of(ocrq(3)))), Action::Drop);
  EXPECT_EQ(counter("budget_calls_refused"), 1u);
  EXPECT_EQ(h.gw.tracker().call_count(), 2u);
  // The calls set up before the budget was reached still carry GRE both ways.
  Packet gre = checksummed(test::gre(kServer, kPublic, 1, 1, test::lcp_echo()));
  EXPECT_EQ(send(gre), Action::Accept);
  Packet back = checksummed(test::gre(good.pns.address, kServer, 102, 1, test::lcp_echo()));
  EXPECT_EQ(send(back), Action::Accept);
}

TEST_F(SmallBudgets, ASplitSetUpRefusedAtTheCallBudgetGivesItsReservedCallIdBack) {
  // The first part leaves with an outside Call ID reserved for it (docs/packet-path.md, "Held
  // segments"); the whole request is then over the source's call budget: the reservation
  // goes back at once, not when the connection closes.
  h.start(good);
  ASSERT_EQ(send(good.to_pac(test::bytes_of(ocrq(1)))), Action::Accept);
  ASSERT_EQ(send(good.to_pns(test::bytes_of(ocrp(101, 1)))), Action::Accept);
  ASSERT_EQ(send(good.to_pac(test::bytes_of(ocrq(2)))), Action::Accept);
  ASSERT_EQ(send(good.to_pns(test::bytes_of(ocrp(102, 2)))), Action::Accept);
  const Packet message = test::bytes_of(ocrq(3));
  EXPECT_EQ(send(good.to_pac(Packet(message.begin(), message.begin() + 20))), Action::Accept);
  EXPECT_EQ(h.gw.translator().reservations(), 1u);
  EXPECT_EQ(send(good.to_pac(Packet(message.begin() + 20, message.end()))), Action::Drop);
  EXPECT_EQ(counter("budget_calls_refused"), 1u);
  EXPECT_EQ(h.gw.translator().reservations(), 0u);
}

class ReassemblyBudget : public Budgeted {
 protected:
  ReassemblyBudget() : Budgeted(BudgetLimits{kDefaultMemoryBudgetMiB * kMiB, 64, 64, 64, 2000}) {}
};

TEST_F(ReassemblyBudget, OutOfOrderDataPastASourcesBudgetIsNotKept) {
  // Every segment ahead of a gap is dropped (TCP sends it again: docs/packet-path.md, "Held
  // segments"); the reassembler keeps its bytes only within the source's budget.
  const Packet data(600, 0x42);
  for (std::uint16_t port = 1; port <= 6; ++port) {
    Client c{{addr("192.0.2.66"), port}};
    ASSERT_EQ(send(c.to_pac({}, flags::kSyn)), Action::Accept);
    c.pns_seq += 10;  // a gap: the data is out of order
    EXPECT_EQ(send(c.to_pac(data)), Action::Drop);
  }
  EXPECT_EQ(counter("budget_reassembly_refused"), 3u);  // 3 x 600 bytes kept within 2000
  EXPECT_EQ(counter("control_gap_dropped"), 3u);        // the 3 kept, dropped as ahead of a gap
  // Another source's out-of-order segment is still kept.
  h.start(good);
  good.pns_seq += 10;
  EXPECT_EQ(send(good.to_pac(data)), Action::Drop);
  EXPECT_EQ(counter("budget_reassembly_refused"), 3u);
  EXPECT_EQ(counter("control_gap_dropped"), 4u);
}

TEST(MemoryBudget, NewConnectionsAreRefusedAtTheMemoryBudget) {
  BudgetLimits limits;
  limits.memory_bytes = 5 * kConnectionBytes;
  Harness h{with_budgets(limits)};
  std::size_t accepted = 0;
  for (std::uint16_t port = 1; port <= 10; ++port) {  // ten hosts, one connection each
    Client c{{addr(("192.0.2." + std::to_string(60 + port)).c_str()), port}};
    Packet syn = c.to_pac({}, flags::kSyn);
    if (h.run(syn).action == Action::Accept) ++accepted;
  }
  EXPECT_EQ(accepted, 5u);
  EXPECT_EQ(h.gw.status()["packets"]["budget_memory_refused"], 5);
  EXPECT_LE(h.gw.memory_bytes(), limits.memory_bytes);
}

TEST(MemoryBudget, OneHostTakesAtMostHalfTheBudgetAndAnotherStillConnects) {
  BudgetLimits limits;
  limits.memory_bytes = 10 * kConnectionBytes;
  Harness h{with_budgets(limits)};
  const auto syns = [&h](const char* host, std::uint16_t count) {
    std::size_t accepted = 0;
    for (std::uint16_t port = 1; port <= count; ++port) {
      Client c{{addr(host), port}};
      Packet syn = c.to_pac({}, flags::kSyn);
      if (h.run(syn).action == Action::Accept) ++accepted;
    }
    return accepted;
  };
  EXPECT_EQ(syns("192.0.2.66", 20), 5u);  // the flooding host: its half
  EXPECT_EQ(syns("192.0.2.67", 3), 3u);   // a good host beside it
  EXPECT_EQ(h.gw.status()["packets"]["budget_memory_refused"], 15);
}

TEST(MemoryBudget, TheStatusShowsTheBudgetAndWhatItCountsNow) {
  BudgetLimits limits;
  limits.memory_bytes = 3 * kMiB;
  Harness h{with_budgets(limits)};
  EXPECT_EQ(h.gw.status()["memory"]["used_bytes"], 0);
  Client c{{addr("192.0.2.66"), 1}};
  h.start(c);
  const nlohmann::json memory = h.gw.status()["memory"];
  EXPECT_EQ(memory["budget_bytes"], 3 * kMiB);
  EXPECT_EQ(memory["used_bytes"], kConnectionBytes);
  EXPECT_EQ(memory["sources"], 1);
}

TEST_F(SmallBudgets, AHostConnectingFromPort1723IsChargedAsAClient) {
  // 192.0.2.66 opens connections from port 1723 toward other ports: the tracker sees it as
  // the PAC, and it is still the host that the budget counts (issue 12 item 4).
  for (std::uint16_t port = 1; port <= 3; ++port) {
    Client c{{addr("192.0.2.30"), port}, {addr("192.0.2.66"), wire::kPptpPort}};
    const Action a = send(c.to_pns({}, flags::kSyn));
    EXPECT_EQ(a, port <= 2 ? Action::Accept : Action::Drop) << port;
  }
  EXPECT_EQ(counter("budget_connections_refused"), 1u);
}

// Only alice (192.0.2.11) may open control connections.
class PolicyEitherSide : public ::testing::Test {
 protected:
  static GatewayOptions at_noon() {
    GatewayOptions o;
    o.wall_clock = [] { return policy::WallTime{1, 12 * 60}; };
    return o;
  }
  void SetUp() override {
    auto p = policy::parse_policy("users: {alice: {addresses: 192.0.2.11}}\nrules: [{from: {user: alice}, action: allow}]\n");
    ASSERT_TRUE(p);
    h.gw.set_policy(std::make_shared<const policy::Policy>(std::move(*p)));
  }
  Harness h{at_noon()};
};

TEST_F(PolicyEitherSide, AConnectionOpenedFromPort1723IsJudged) {
  // 192.0.2.66 is no user: its connection from port 1723 is refused like any other.
  Client c{{addr("192.0.2.30"), 40000}, {addr("192.0.2.66"), wire::kPptpPort}};
  Packet syn = c.to_pns({}, flags::kSyn);
  EXPECT_EQ(h.run(syn).action, Action::Drop);
  EXPECT_EQ(h.gw.status()["policy"]["connections_denied"], 1);
  EXPECT_EQ(h.gw.tracker().connection_count(), 0u);
}

TEST_F(PolicyEitherSide, AConnectionPickedUpMidStreamFromTheServerSideIsNotJudgedAsTheServers) {
  // After a restart the server speaks first on alice's connection: alice is its client.
  Client alice{{addr("192.0.2.11"), 40001}};
  wire::EchoRequest echo;
  Packet from_server = alice.to_pns(test::bytes_of(echo));
  EXPECT_EQ(h.run(from_server).action, Action::Accept);
  EXPECT_EQ(h.gw.status()["policy"]["connections_denied"], 0);
}

TEST_F(Budgeted, ARecordWithPatchesOutlivesItsConnectionThenGoes) {
  Client a{{addr("192.0.2.11"), 40001}}, b{{addr("192.0.2.12"), 40002}};
  h.start(a);
  h.start(b);
  ASSERT_EQ(send(a.to_pac(test::bytes_of(ocrq(1)))), Action::Accept);
  Packet translated = b.to_pac(test::bytes_of(ocrq(1)));  // collides: b's Call ID is rewritten
  ASSERT_TRUE(h.run(translated).modified);
  ASSERT_EQ(send(b.to_pac({}, flags::kRst)), Action::Accept);
  ASSERT_EQ(send(a.to_pac({}, flags::kRst)), Action::Accept);
  EXPECT_NE(h.gw.connection_record(2), nullptr);  // b's: its patch fixes late retransmissions
  EXPECT_EQ(h.gw.connection_record(1), nullptr);  // a's: nothing to patch
  h.gw.expire(h.now + track::kConnectionIdleTimeout + 1);
  EXPECT_EQ(h.gw.connection_record(2), nullptr);
  EXPECT_TRUE(h.gw.budgets().empty());
}

// The first 15 bytes of an Outgoing-Call-Reply: its Peer's Call ID field's first byte
// (offset 14, RFC 2637 2.8) is in, the second never comes. The segment is held
// (docs/packet-path.md).
constexpr std::size_t kStalledBytes = 15;
constexpr std::size_t kStalledPacketBytes = 40 + kStalledBytes;  // IPv4 and TCP headers

class HeldBudget : public Budgeted {
 protected:
  HeldBudget() : Budgeted(limits()) {}
  static BudgetLimits limits() {
    BudgetLimits l;
    l.source_held_bytes = 3 * kStalledPacketBytes;
    return l;
  }
  static Packet reply() { return test::bytes_of(ocrp(9, 7)); }
  Action stall(Client& c) {
    const Packet m = reply();
    return send(c.to_pns(Packet(m.begin(), m.begin() + kStalledBytes)));
  }
};

TEST_F(HeldBudget, ASourcesStalledSegmentsPastItsBudgetAreDroppedAndOthersStillHold) {
  std::vector<Client> stalled;
  for (std::uint16_t port = 1; port <= 4; ++port) stalled.push_back(Client{{addr("192.0.2.66"), port}});
  for (Client& c : stalled) h.start(c);
  for (std::size_t i = 0; i < stalled.size(); ++i) EXPECT_EQ(stall(stalled[i]), i < 3 ? Action::Hold : Action::Drop) << i;
  EXPECT_EQ(counter("budget_held_refused"), 1u);
  EXPECT_EQ(counter("control_held"), 3u);
  h.start(good);  // another host's segment is still held
  EXPECT_EQ(stall(good), Action::Hold);
  EXPECT_EQ(counter("budget_held_refused"), 1u);
  // One of the source's fields completes: its segment leaves and gives its bytes back, so
  // the refused segment, sent again by TCP, is held now.
  const Packet m = reply();
  send(stalled[0].to_pns(Packet(m.begin() + kStalledBytes, m.end())));
  EXPECT_EQ(h.gw.take_released().size(), 1u);
  stalled[3].pac_seq -= kStalledBytes;
  EXPECT_EQ(stall(stalled[3]), Action::Hold);
  // Held segments go with their connections, and so does every byte charged for them.
  for (Client& c : stalled) ASSERT_EQ(send(c.to_pac({}, flags::kRst)), Action::Accept);
  ASSERT_EQ(send(good.to_pac({}, flags::kRst)), Action::Accept);
  EXPECT_EQ(h.gw.take_released().size(), 4u);  // dropped (three of the source, one of good)
  EXPECT_TRUE(h.gw.budgets().empty());
}

// One line per connection is still a line per SYN/RST from a host that churns: the
// connection_closed lines have a budget per source, and what they hold back is counted.
TEST(ConnectionLines, AChurningHostGetsItsBudgetOfLinesTheRestCountedAndOthersTheirOwn) {
  CapturedLog captured;
  Harness h({}, captured.log);
  const auto syn_rst = [&h](Client& c) {
    c.pns_seq += 100000;  // a new connection: a new ISN
    h.pass(c.to_pac({}, flags::kSyn));
    h.pass(c.to_pac({}, flags::kRst));
  };
  Client churn{{addr("192.0.2.66"), 50000}}, other{{addr("192.0.2.20"), 40000}};
  for (int i = 0; i < 30; ++i) syn_rst(churn);
  syn_rst(other);
  EXPECT_EQ(captured.lines_with("connection_closed connection="), kSourceLogBurst + 1);
  EXPECT_EQ(captured.lines_with("pns=192.0.2.20:40000"), 1u);  // the flood did not silence it
  // The next window reports what the last held back, then logs again.
  h.now += kLogWindow + 1;
  syn_rst(churn);
  EXPECT_EQ(captured.lines_with("anomaly_suppressed kind=connection_closed source=192.0.2.66 lines=25"), 1u);
  EXPECT_EQ(captured.lines_with("connection_closed connection="), kSourceLogBurst + 2);
  // At the end, the window in progress reports too: every connection a line or counted.
  for (int i = 0; i < 10; ++i) syn_rst(churn);
  h.gw.shutdown(h.now + 1);
  EXPECT_EQ(captured.lines_with("anomaly_suppressed kind=connection_closed source=192.0.2.66 lines=6"), 1u);
}

}  // namespace
}  // namespace pptp::gateway
