// Call set-ups the s35 review broke (docs/packet-path.md, "Integrity: what holds against a
// hostile peer"): a set-up that opens no call never leaves untranslated (F3), a call the
// server places is routed and charged only once the client answers it (F1, F4), a server's
// Call ID another client's call has through the same public address ends the later call
// (F0), and a server that opens and ends calls as fast as it likes does not fill the log
// (F2). A takes Call ID 9 first (outside 9, server Call ID 100); B is the other client
// behind the same public address.
#include <gtest/gtest.h>

#include "gateway/gateway.hpp"
#include "policy/loader.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway {
namespace {

using namespace harness;  // NOLINT: the harness is this file's vocabulary

class HostileServer : public ::testing::Test {
 protected:
  explicit HostileServer(std::shared_ptr<spdlog::logger> log = quiet(), GatewayOptions o = {})
      : h(std::move(o), std::move(log)) {}
  // The options a fixture below starts the gateway with: the defaults as `change` leaves them.
  template <class Change>
  static GatewayOptions options_with(Change change) {
    GatewayOptions o;
    change(o);
    return o;
  }
  void SetUp() override {
    h.start(a);
    h.pass(a.to_pac(test::bytes_of(ocrq(9))));
    h.pass(a.to_pns(test::bytes_of(ocrp(100, 9))));
    h.start(b);
  }
  // Where the server's GRE with this Key goes (nullopt: dropped).
  std::optional<wire::Ipv4Address> gre_to_client(std::uint16_t key) {
    Packet g = checksummed(test::gre(kServer, kPublic, key, 1, test::ppp(0x0021, {1, 2, 3})));
    if (h.run(g).action != Action::Accept) return std::nullopt;
    return wire::parse_ipv4(g)->destination;
  }
  // Whether a client's GRE with this Key (the server's Call ID) is forwarded.
  bool gre_to_server_passes(const Client& from, std::uint16_t key) {
    Packet g = checksummed(test::gre(from.pns.address, kServer, key, 1, test::ppp(0x0021, {1, 2, 3})));
    return h.run(g).action == Action::Accept;
  }
  // `c` asks for a call with Call ID `id` and the server answers it with `server_id`; the
  // Call ID the server was told (outside); nothing when a message did not pass.
  std::optional<std::uint16_t> call(Client& c, std::uint16_t id, std::uint16_t server_id) {
    Packet request = c.to_pac(test::bytes_of(ocrq(id)));
    if (h.run(request).action != Action::Accept) return std::nullopt;
    const std::uint16_t outside = tcp_u16(request, 12);
    Packet reply = c.to_pns(test::bytes_of(ocrp(server_id, outside)));
    if (h.run(reply).action != Action::Accept) return std::nullopt;
    return outside;
  }
  bool left_with_call_id(std::uint16_t id, Packet p) {
    const Verdict v = h.run(p);
    return v.action == Action::Accept && tcp_u16(p, 12) == id;
  }
  std::uint64_t anomaly(const char* name) { return h.gw.status()["anomalies"].value(name, std::uint64_t{0}); }
  std::size_t calls_tracked() { return h.gw.status()["calls"].get<std::size_t>(); }
  Harness h;
  Client a{{addr("192.0.2.11"), 40001}};
  Client b{{addr("192.0.2.12"), 40002}};
};

TEST_F(HostileServer, ARequestPastTheCallsLimitIsRefusedNotSentAsWritten) {
  for (std::uint16_t i = 0; i < track::kMaxCallsPerConnection; ++i) {
    Packet p = b.to_pac(test::bytes_of(ocrq(static_cast<std::uint16_t>(20000 + i))));
    ASSERT_EQ(h.run(p).action, Action::Accept) << i;
    h.pass(b.to_pns({}, flags::kAck));  // what the gateway keeps to check retransmissions goes
  }
  // Untranslated, the server would key the new call's GRE with 9: A's outside Call ID.
  EXPECT_FALSE(left_with_call_id(9, b.to_pac(test::bytes_of(ocrq(9)))));
  EXPECT_EQ(anomaly("too_many_calls"), 1u);
  EXPECT_EQ(gre_to_client(9), a.pns.address);
}

TEST_F(HostileServer, AnAcceptingIncomingCallReplyToNoCallIsRefused) {
  // A failure names no Call ID the server will use: it passes.
  h.pass(b.to_pac(test::bytes_of(icrp(9, 300, 2))));
  // An acceptance (here to a call never placed, or one whose set-up timed out) would take
  // Call ID 9 to the server as written.
  EXPECT_FALSE(left_with_call_id(9, b.to_pac(test::bytes_of(icrp(9, 301)))));
  EXPECT_EQ(anomaly("unknown_call"), 2u);
  EXPECT_EQ(gre_to_client(9), a.pns.address);
}

TEST_F(HostileServer, AnIncomingCallsGreIsForwardedOnlyOnceTheClientAnswers) {
  h.pass(b.to_pns(test::bytes_of(icrq(300))));
  EXPECT_FALSE(gre_to_server_passes(b, 300));  // nothing has judged the call yet
  Packet reply = b.to_pac(test::bytes_of(icrp(12, 300)));
  ASSERT_EQ(h.run(reply).action, Action::Accept);
  const std::uint16_t outside = tcp_u16(reply, 12);
  wire::IncomingCallConnected connected;
  connected.peer_call_id = outside;
  Packet p = b.to_pns(test::bytes_of(connected));
  ASSERT_EQ(h.run(p).action, Action::Accept);
  EXPECT_TRUE(gre_to_server_passes(b, 300));
  EXPECT_EQ(gre_to_client(outside), b.pns.address);
}

TEST_F(HostileServer, UnansweredIncomingCallsAreBoundedPerConnection) {
  for (std::uint16_t i = 0; i < track::kMaxUnansweredIncomingCalls; ++i) {
    h.pass(b.to_pns(test::bytes_of(icrq(static_cast<std::uint16_t>(300 + i)))));
  }
  EXPECT_EQ(anomaly("incoming_call_refused"), 0u);
  EXPECT_EQ(calls_tracked(), 1u + track::kMaxUnansweredIncomingCalls);
  h.pass(b.to_pns(test::bytes_of(icrq(400))));  // passes: the server's stream is not cut
  EXPECT_EQ(anomaly("incoming_call_refused"), 1u);
  EXPECT_FALSE(left_with_call_id(13, b.to_pac(test::bytes_of(icrp(13, 400)))));  // no call to answer
  EXPECT_EQ(calls_tracked(), 1u + track::kMaxUnansweredIncomingCalls);
}

TEST_F(HostileServer, AServerCallIdAnotherClientsCallHasEndsTheLaterCall) {
  // Poptop gives B's call A's server Call ID (a connection run past its 128 IDs).
  ASSERT_TRUE(call(b, 7, 100));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_FALSE(gre_to_server_passes(b, 100));  // at the server it would land in A's session
  EXPECT_TRUE(gre_to_server_passes(a, 100));
  EXPECT_EQ(calls_tracked(), 1u);
  // Once A's call ends, the Call ID is free for another call.
  wire::CallDisconnectNotify end;
  end.call_id = 100;
  h.pass(a.to_pns(test::bytes_of(end)));
  ASSERT_TRUE(call(b, 8, 100));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_TRUE(gre_to_server_passes(b, 100));
}

// A server that gives two calls of one connection one Call ID confuses only that client's
// GRE; the ID stays held while either call lives (s36 review N3: the first to end gave it
// back, and the next client given it shared the other's call at the server).
TEST_F(HostileServer, AServerCallIdTwoCallsOfOneConnectionShareIsHeldUntilBothEnd) {
  ASSERT_TRUE(call(a, 10, 100));  // A's second call, given its first call's server Call ID
  EXPECT_EQ(anomaly("pac_call_id_taken"), 0u);
  wire::CallDisconnectNotify end;
  end.call_id = 100;
  h.pass(a.to_pns(test::bytes_of(end)));  // one of the two ends
  ASSERT_EQ(calls_tracked(), 1u);
  ASSERT_TRUE(call(b, 7, 100));  // the other still has it: B's call ends (a tie keeps the first)
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_FALSE(gre_to_server_passes(b, 100));  // at the server it would land in A's call
  h.pass(a.to_pns(test::bytes_of(end)));  // the last of A's two ends: the ID is free
  ASSERT_EQ(calls_tracked(), 0u);
  ASSERT_TRUE(call(b, 8, 100));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_TRUE(gre_to_server_passes(b, 100));
}

// The holder of a shared Call ID idles out while the other call lives: the server's call of
// the first may be up, so the ID stays parked for the connection even once the second call is
// cleared (s37 review R3: it was handed over and given back with the second).
class HostileServerShortIdle : public HostileServer {
 protected:
  HostileServerShortIdle() : HostileServer(quiet(), options_with([](GatewayOptions& o) { o.timeouts.call_idle = 5; })) {}
};

TEST_F(HostileServerShortIdle, AnIdledOutHolderKeepsASharedServerCallIdParked) {
  const auto outside = call(a, 10, 100);  // A's second call, given its first call's server Call ID
  ASSERT_TRUE(outside);
  for (int i = 0; i < 2; ++i) {
    h.now += 3;
    ASSERT_EQ(gre_to_client(*outside), a.pns.address);  // the second call lives
  }
  h.gw.expire(h.now);  // the first idles out
  ASSERT_EQ(calls_tracked(), 1u);
  wire::CallDisconnectNotify end;
  end.call_id = 100;
  h.pass(a.to_pns(test::bytes_of(end)));  // the second is cleared
  ASSERT_EQ(calls_tracked(), 0u);
  ASSERT_TRUE(call(b, 7, 100));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_FALSE(gre_to_server_passes(b, 100));
}

// A connection runs past a server's range of Call IDs only with many calls: the holder with
// more calls than the new call's connection, and more than a range, is cut (s35 second
// review N4: one connection with 1,024 calls at pptpd denied the next 7 clients behind the
// same public address).
TEST_F(HostileServer, AConnectionPastItsRangeLosesTheServerCallId) {
  const auto last = static_cast<std::uint16_t>(100 + kCallsInAServerRange);
  for (std::uint16_t id = 101; id <= last; ++id) {
    ASSERT_TRUE(call(a, static_cast<std::uint16_t>(id - 90), id)) << id;  // A: server Call IDs 100 on
  }
  ASSERT_TRUE(call(b, 6, 101));  // A's second call's: within A's range, though A holds 129 calls
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_EQ(h.gw.counters().connections_cut_server_call_id, 0u);
  ASSERT_TRUE(call(b, 7, last));  // B's call given A's last call's: past A's range
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_EQ(h.gw.counters().connections_cut_server_call_id, 1u);
  EXPECT_TRUE(gre_to_server_passes(b, last));
  EXPECT_FALSE(gre_to_server_passes(a, last));  // A's connection is cut: none of its GRE passes
  EXPECT_FALSE(gre_to_server_passes(a, 100));
  Packet more = a.to_pac(test::bytes_of(ocrq(5)));
  EXPECT_EQ(h.run(more).action, Action::Drop);
}

// A connection that ran past its range with few calls up at a time (each ended before the
// next): its call past the range loses the Call ID all the same (s37; with "more open calls
// than the other" it kept it, and the next client given it was refused).
TEST_F(HostileServer, AConnectionPastItsRangeWithOneLiveCallLosesTheServerCallId) {
  wire::CallDisconnectNotify end;
  for (std::uint16_t id = 100; id < 100 + kCallsInAServerRange; ++id) {
    if (id > 100) {
      ASSERT_TRUE(call(a, static_cast<std::uint16_t>(id - 90), id)) << id;
    }
    end.call_id = id;
    h.pass(a.to_pns(test::bytes_of(end)));
  }
  const auto past = static_cast<std::uint16_t>(100 + kCallsInAServerRange);
  ASSERT_TRUE(call(a, 5, past));
  ASSERT_EQ(calls_tracked(), 1u);
  ASSERT_TRUE(call(b, 7, past));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 0u);
  EXPECT_EQ(h.gw.counters().connections_cut_server_call_id, 1u);
  EXPECT_TRUE(gre_to_server_passes(b, past));
  EXPECT_FALSE(gre_to_server_passes(a, past));
}

// pptpd's ranges wrap after 512 connections, which a client can open: a new connection's first
// call then gets the Call ID of a connection with a few calls in its own range. That one keeps
// it; the new call is refused (s37: before, more calls than the new connection's were enough
// to be cut).
TEST_F(HostileServer, AConnectionWithinItsRangeKeepsItsServerCallId) {
  ASSERT_TRUE(call(a, 10, 101));
  ASSERT_TRUE(call(a, 11, 102));  // A: three calls, server Call IDs 100 to 102
  ASSERT_TRUE(call(b, 7, 102));   // B's first call given A's third call's
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_EQ(h.gw.counters().connections_cut_server_call_id, 0u);
  EXPECT_FALSE(gre_to_server_passes(b, 102));
  EXPECT_TRUE(gre_to_server_passes(a, 102));
  EXPECT_TRUE(gre_to_server_passes(a, 100));
}

// The refused call's Outgoing-Call-Reply reaches the client as a failure (RFC 2637 2.8:
// General Error, No-Resource), its retransmission too; before (known limit R4) it came as
// Connected, and the client sent GRE that went nowhere.
TEST_F(HostileServer, ARefusedCallsReplyTellsTheClientGeneralError) {
  Packet request = b.to_pac(test::bytes_of(ocrq(7)));
  ASSERT_EQ(h.run(request).action, Action::Accept);
  const Packet written = test::bytes_of(ocrp(100, tcp_u16(request, 12)));  // A's server Call ID
  const std::uint32_t start = b.pac_seq;
  for (int copy = 0; copy < 2; ++copy) {  // the reply, then its retransmission
    b.pac_seq = start;
    Packet reply = b.to_pns(written);
    const Verdict v = h.run(reply);
    ASSERT_EQ(v.action, Action::Accept) << copy;
    EXPECT_TRUE(v.modified) << copy;
    EXPECT_EQ(reply[40 + 16], 2) << copy;  // Result Code: General Error
    EXPECT_EQ(reply[40 + 17], 4) << copy;  // Error Code: No-Resource
    EXPECT_TRUE(nat::tcp_checksum_ok(reply, 20)) << copy;
  }
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_EQ(calls_tracked(), 1u);  // A's only: B's ended
  EXPECT_FALSE(gre_to_server_passes(b, 100));
  // A reply the gateway accepts leaves as the server wrote it.
  Packet accepted = b.to_pac(test::bytes_of(ocrq(8)));
  ASSERT_EQ(h.run(accepted).action, Action::Accept);
  ASSERT_EQ(tcp_u16(accepted, 12), 8);
  h.pass(b.to_pns(test::bytes_of(ocrp(101, 8))));
  EXPECT_EQ(calls_tracked(), 2u);
  EXPECT_EQ(h.gw.counters().pac_call_id_refusal_unsignalled, 0u);
}

// A reply cut after its Result Code: that byte left as Connected before the reply was whole,
// so the client is not told (counted); so too where a retransmission with the rest makes it
// whole (the client keeps the bytes it had). Cut before it, the rest carries the failure.
TEST_F(HostileServer, ARefusedCallsReplySplitAfterItsResultCodeIsCounted) {
  struct Case {
    std::size_t cut;
    bool resent_whole;  // the rest comes in a retransmission of the whole reply
    bool told;
  };
  std::uint16_t id = 20;
  for (const Case k : {Case{17, false, false}, Case{20, true, false}, Case{16, false, true}}) {
    Packet request = b.to_pac(test::bytes_of(ocrq(++id)));
    ASSERT_EQ(h.run(request).action, Action::Accept);
    const Packet written = test::bytes_of(ocrp(100, tcp_u16(request, 12)));
    const std::uint32_t start = b.pac_seq;
    h.pass(b.to_pns(slice(written, 0, k.cut)));
    if (k.resent_whole) b.pac_seq = start;
    const std::size_t from = k.resent_whole ? 0 : k.cut;
    Packet rest = b.to_pns(slice(written, from, written.size()));
    ASSERT_EQ(h.run(rest).action, Action::Accept);
    EXPECT_TRUE(nat::tcp_checksum_ok(rest, 20));
    const std::uint8_t* codes = &rest[40 + 16 - from];  // Result Code, Error Code
    if (k.told) {
      EXPECT_EQ(codes[0], 2) << k.cut;
      EXPECT_EQ(codes[1], 4) << k.cut;
    } else if (k.cut < 18) {
      EXPECT_EQ(codes[1], written[17]) << "an Error Code without its Result Code: as written";
    } else {
      EXPECT_EQ(codes[0], written[16]) << "as the client had it";
    }
  }
  EXPECT_EQ(h.gw.counters().pac_call_id_refusal_unsignalled, 2u);
  EXPECT_EQ(anomaly("pac_call_id_taken"), 3u);
  EXPECT_EQ(calls_tracked(), 1u);
}

// A call adopted at a restart (--keep-fast-path) or taken over from the HA peer holds its
// server Call ID as a tracked call does: before s36 it held none, and a later call given it
// shared the server's call.
class HostileServerAdopted : public HostileServer {
 protected:
  HostileServerAdopted() : HostileServer(quiet(), options_with([](GatewayOptions& o) { o.fast_path = true; })) {}
};

TEST_F(HostileServerAdopted, AnAdoptedCallsServerCallIdEndsALaterCallGivenIt) {
  const OffloadedCall adopted{kServer, kPublic, addr("192.0.2.13"), 40, 40, 500};
  ASSERT_EQ(h.gw.adopt_offloaded({OffloadCount{true, adopted, 0, 0, adopted}}, h.now), 1u);
  ASSERT_TRUE(call(b, 7, 500));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_FALSE(gre_to_server_passes(b, 500));
  // Once the adopted call ends (the operator's kill here; its idle timeout, a Call-Clear on a
  // taken-over connection or a demotion the same way), the Call ID is free again.
  ASSERT_EQ(h.gw.kill_calls(KillRequest{std::nullopt, std::nullopt, adopted.inside}, h.now).calls, 1u);
  ASSERT_TRUE(call(b, 8, 500));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_TRUE(gre_to_server_passes(b, 500));
}

// The server never hears that the gateway ended B's call: its GRE for B's outside Call ID may
// come as long as B's connection lives, so that ID goes to no other client (s35 second review, N1:
// 196 frames of A's session reached the next client given it).
TEST_F(HostileServer, TheEndedCallsOutsideCallIdGoesToNoOtherClient) {
  const auto b_outside = call(b, 7, 100);
  ASSERT_TRUE(b_outside);
  ASSERT_EQ(anomaly("pac_call_id_taken"), 1u);
  Client c{{addr("192.0.2.13"), 40003}};
  h.start(c);
  const auto c_outside = call(c, *b_outside, 300);
  ASSERT_TRUE(c_outside);
  EXPECT_NE(*c_outside, *b_outside);
  EXPECT_EQ(gre_to_client(*b_outside), std::nullopt);  // the server's call for B: to nobody
}

// A server Call ID whose call idled out while its connection lives stays that call's: the
// server's call may be up (s35 second review: a client with 129 calls took it unchecked).
TEST(HostileServerIdle, AnIdledOutCallKeepsItsServerCallIdWhileItsConnectionLives) {
  GatewayOptions o;
  o.timeouts.call_idle = 5;
  Harness h(o);
  Client a{{addr("192.0.2.11"), 40001}}, b{{addr("192.0.2.12"), 40002}};
  ASSERT_NO_FATAL_FAILURE(call_then_idle_out(h, a, 9, 100));
  h.start(b);
  Packet request = b.to_pac(test::bytes_of(ocrq(7)));
  ASSERT_EQ(h.run(request).action, Action::Accept);
  Packet refused = b.to_pns(test::bytes_of(ocrp(100, tcp_u16(request, 12))));
  ASSERT_EQ(h.run(refused).action, Action::Accept);  // as General Error
  EXPECT_EQ(h.gw.status()["anomalies"].value("pac_call_id_taken", std::uint64_t{0}), 1u);
  // Once A's connection ends, the Call ID is free.
  h.pass(a.to_pac({}, flags::kRst));
  Packet again = b.to_pac(test::bytes_of(ocrq(8)));
  ASSERT_EQ(h.run(again).action, Action::Accept);
  h.pass(b.to_pns(test::bytes_of(ocrp(100, tcp_u16(again, 12)))));
  EXPECT_EQ(h.gw.status()["anomalies"].value("pac_call_id_taken", std::uint64_t{0}), 1u);
  EXPECT_EQ(h.gw.tracker().call_count(), 1u);
}

TEST_F(HostileServer, AServerCallIdTakenIsRefusedForAPlacedCallToo) {
  h.pass(b.to_pns(test::bytes_of(icrq(100))));
  EXPECT_EQ(anomaly("pac_call_id_taken"), 1u);
  EXPECT_FALSE(left_with_call_id(13, b.to_pac(test::bytes_of(icrp(13, 100)))));
  EXPECT_TRUE(gre_to_server_passes(a, 100));
}

TEST(HostileServerLog, CallLinesHaveABudgetPerClient) {
  CapturedLog captured;
  Harness h({}, captured.log);
  Client b{{addr("192.0.2.12"), 40002}};
  h.start(b);
  constexpr std::uint16_t kCalls = 1000;
  for (std::uint16_t i = 0; i < kCalls; ++i) {
    wire::IncomingCallRequest placed;
    placed.call_id = static_cast<std::uint16_t>(300 + i);
    h.pass(b.to_pns(test::bytes_of(placed)));
    wire::CallDisconnectNotify ended;
    ended.call_id = placed.call_id;
    h.pass(b.to_pns(test::bytes_of(ended)));
    h.pass(b.to_pac({}, flags::kAck));
  }
  captured.log->flush();
  // 3,000 segments 0.01 s apart: four windows of kLogWindow.
  EXPECT_GE(captured.lines_with("call_closed connection="), kCallLogBurst);
  EXPECT_LE(captured.lines_with("call_closed connection="), 4 * kCallLogBurst);
  EXPECT_GE(captured.lines_with("anomaly_suppressed kind=call_closed source=192.0.2.12"), 1u);
}

// The refusal's line says what the client was told (RFC 2637 2.8).
TEST(HostileServerLog, ARefusedCallsLineSaysTheClientIsToldGeneralError) {
  CapturedLog captured;
  Harness h({}, captured.log);
  Client a{{addr("192.0.2.11"), 40001}}, b{{addr("192.0.2.12"), 40002}};
  h.start(a);
  h.pass(a.to_pac(test::bytes_of(ocrq(9))));
  h.pass(a.to_pns(test::bytes_of(ocrp(100, 9))));
  h.start(b);
  h.pass(b.to_pac(test::bytes_of(ocrq(7))));
  Packet refused = b.to_pns(test::bytes_of(ocrp(100, 7)));
  ASSERT_EQ(h.run(refused).action, Action::Accept);
  captured.log->flush();
  EXPECT_EQ(captured.lines_with("pac_call_id_taken"), 1u) << captured.text.str();
  EXPECT_EQ(captured.lines_with("Call ID 100; the client is told General Error (No-Resource)"), 1u) << captured.text.str();
}

// A client whose server refuses every call: each set-up is translated (B's Call ID 9 is A's
// outside one) and judged; those lines have the client's call budget (s35 second review, N2: 78 MB
// of call_id_translated in 10 s, 227 MB with policy_decision under a policy).
TEST(HostileServerLog, TranslatedAndJudgedSetUpsHaveABudgetPerClient) {
  CapturedLog captured;
  Harness h({}, captured.log);
  auto loaded = policy::parse_policy("default: allow\n");
  ASSERT_TRUE(loaded) << policy::to_string(loaded.error(), "test");
  h.gw.set_policy(std::make_shared<const policy::Policy>(std::move(*loaded)));
  Client a{{addr("192.0.2.11"), 40001}}, b{{addr("192.0.2.12"), 40002}};
  h.start(a);
  h.pass(a.to_pac(test::bytes_of(ocrq(9))));
  h.pass(a.to_pns(test::bytes_of(ocrp(100, 9))));
  h.start(b);
  constexpr int kSetUps = 500;  // 1,500 segments 0.01 s apart: two windows
  for (int i = 0; i < kSetUps; ++i) {
    Packet request = b.to_pac(test::bytes_of(ocrq(9)));
    ASSERT_EQ(h.run(request).action, Action::Accept) << i;
    wire::OutgoingCallReply refused = ocrp(0, tcp_u16(request, 12));
    refused.result_code = 2;
    Packet answer = b.to_pns(test::bytes_of(refused));
    ASSERT_EQ(h.run(answer).action, Action::Accept) << i;
    h.pass(b.to_pac({}, flags::kAck));
  }
  captured.log->flush();
  EXPECT_GE(captured.lines_with("call_id_translated connection="), kCallLogBurst);
  EXPECT_LE(captured.lines_with("call_id_translated connection="), 2 * kCallLogBurst);
  EXPECT_LE(captured.lines_with("policy_decision scope=call "), 2 * kCallLogBurst + 1);
  EXPECT_GE(captured.lines_with("anomaly_suppressed kind=policy_decision source=192.0.2.12"), 1u);
}

}  // namespace
}  // namespace pptp::gateway
