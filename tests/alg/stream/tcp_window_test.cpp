#include "alg/stream/tcp_window.hpp"

#include <gtest/gtest.h>

#include "tests/alg/stream/tcp_window_helpers.hpp"

namespace pptp::stream {
namespace {

TEST(TcpWindow, DataInsideTheWindowIsTakenAndBeyondItIsNot) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 100)).take);
  const TcpVerdict far = c.w.judge(kPns, segment(c.pns_next() + 5000, f::kAck, 50001, 1000, 10));
  EXPECT_FALSE(far.take);
  EXPECT_EQ(far.anomaly, TcpWindowAnomaly::OutOfWindow);
  // A retransmission of data already sent is inside (one window back).
  EXPECT_TRUE(c.w.judge(kPns, segment(1001, f::kAck, 50001, 1000, 100)).take);
}

TEST(TcpWindow, ARstActsOnlyAtTheExpectedSequenceNumber) {
  Connection c(1000, 50000);
  const TcpVerdict near = c.w.judge(kPns, segment(c.pns_next() + 10, f::kRst));
  EXPECT_FALSE(near.rst_acts);
  EXPECT_EQ(near.anomaly, TcpWindowAnomaly::RstInWindow);
  const TcpVerdict far = c.w.judge(kPns, segment(c.pns_next() + 900000, f::kRst));
  EXPECT_FALSE(far.rst_acts);
  EXPECT_EQ(far.anomaly, TcpWindowAnomaly::RstOutOfWindow);
  const TcpVerdict exact = c.w.judge(kPns, segment(c.pns_next(), f::kRst | f::kAck, 50001));
  EXPECT_TRUE(exact.rst_acts);
  EXPECT_FALSE(exact.anomaly);
  // From the PAC: at its next sequence number, which the PNS acknowledged.
  EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kRst)).rst_acts);
}

// A blind attacker who lands one data segment in the window (a guess among window-sized
// slots, not among 2^32 numbers) knows where it ends: a RST there must not act, since the
// receiver holds that data out of order and its RCV.NXT did not move (RFC 5961 3.2: it
// answers such a RST with a challenge ACK). Otherwise the gateway would end the connection
// and its calls while the real one goes on.
TEST(TcpWindow, ARstAtTheEndOfDataForgedAheadDoesNotAct) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 300, f::kAck, 50001, 1000, 10)).take);  // forged, a gap before it
  const TcpVerdict forged = c.w.judge(kPns, segment(c.pns_next() + 310, f::kRst));
  EXPECT_FALSE(forged.rst_acts);
  EXPECT_EQ(forged.anomaly, TcpWindowAnomaly::RstInWindow);
  // The real sender's RST, at what the receiver expects next, still acts.
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kRst)).rst_acts);
}

// Real data reordered (the second segment first): when the first fills the gap, the end
// with no gap jumps over the second, as the receiver's RCV.NXT does: a RST and a FIN at
// their end act at once. One past a gap still held does not.
TEST(TcpWindow, AfterReorderedDataARstOrFinAtTheEndOfBothActs) {
  for (const bool rst : {true, false}) {
    Connection c(1000, 50000);
    EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 50, f::kAck, 50001, 1000, 50)).take);
    const std::uint8_t end_flags = rst ? f::kRst : f::kFin | f::kAck;
    const auto acts = [&](const TcpVerdict& v) { return rst ? v.rst_acts : v.fin_acts; };
    EXPECT_FALSE(acts(c.w.judge(kPns, segment(c.pns_next() + 100, end_flags, 50001, 1000))));  // the gap
    EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 50)).take);
    EXPECT_TRUE(acts(c.w.judge(kPns, segment(c.pns_next() + 100, end_flags, 50001, 1000)))) << rst;
  }
}

// A forged FIN at the end of data forged ahead (a gap before it) does not act, nor does a
// flock of forged ranges push the real reordered data out of what is held.
TEST(TcpWindow, AForgedFinAtTheEndOfForgedDataDoesNotAct) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 300, f::kAck, 50001, 1000, 10)).take);  // forged
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 310, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  for (std::uint32_t i = 0; i < 6; ++i) {  // more forged ranges than are held
    EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 400 + 40 * i, f::kAck, 50001, 1000, 10)).take);
  }
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 20, f::kAck, 50001, 1000, 20)).take);  // real, reordered
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 20)).take);       // real, fills the gap
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 40, f::kFin | f::kAck, 50001, 1000)).fin_acts);
}

// Forged data ahead moves the highest number seen; the sender's real FIN, at the end of
// its own data with no gap, still acts (before: the connection stayed until its idle
// timeout).
TEST(TcpWindow, TheRealFinActsAfterDataForgedAhead) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 300, f::kAck, 50001, 1000, 10)).take);  // forged
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 20)).take);
  const TcpVerdict fin = c.w.judge(kPns, segment(c.pns_next() + 20, f::kFin | f::kAck, 50001, 1000));
  EXPECT_TRUE(fin.fin_acts);
  EXPECT_FALSE(fin.anomaly);
}

TEST(TcpWindow, ARstAnsweringASynActsWhenItAcknowledgesTheSyn) {
  TcpWindow w;
  w.judge(kPns, syn(7000, std::nullopt, 1000));
  EXPECT_FALSE(w.judge(kPac, segment(0, f::kRst | f::kAck, 1234)).rst_acts);
  EXPECT_TRUE(w.judge(kPac, segment(0, f::kRst | f::kAck, 7001)).rst_acts);
}

TEST(TcpWindow, AFinActsOnlyInSequence) {
  Connection c(1000, 50000);
  const TcpVerdict ahead = c.w.judge(kPns, segment(c.pns_next() + 50, f::kFin | f::kAck, 50001, 1000));
  EXPECT_FALSE(ahead.fin_acts);
  EXPECT_EQ(ahead.anomaly, TcpWindowAnomaly::FinOutOfSequence);
  const TcpVerdict behind = c.w.judge(kPns, segment(c.pns_next() - 50, f::kFin | f::kAck, 50001, 1000));
  EXPECT_FALSE(behind.fin_acts);
  // With data of its own, right at the next number: acts; its retransmission acts again.
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kFin | f::kAck, 50001, 1000, 20)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kFin | f::kAck, 50001, 1000, 20)).fin_acts);
  // A RST after the FIN is expected one past it.
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 21, f::kRst)).rst_acts);
}

TEST(TcpWindow, AFinThatOvertookTheDataBeforeItActsWhenThatDataComes) {
  // A reordering link: the PNS's last 30 bytes and its FIN right after them leave swapped.
  Connection c(1000, 50000);
  const std::uint32_t fin_at = c.pns_next() + 30;
  const TcpVerdict early = c.w.judge(kPns, segment(fin_at, f::kFin | f::kAck, 50001, 1000));
  EXPECT_FALSE(early.fin_acts);
  EXPECT_EQ(early.anomaly, TcpWindowAnomaly::FinOutOfSequence);
  const TcpVerdict data = c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30));
  EXPECT_TRUE(data.take);
  EXPECT_TRUE(data.fin_acts);
  EXPECT_FALSE(data.anomaly);
  // The PAC acknowledges the FIN (one past it) and closes its side: both in the window.
  const TcpVerdict answer = c.w.judge(kPac, segment(50001, f::kFin | f::kAck, fin_at + 1, 1000));
  EXPECT_TRUE(answer.take);
  EXPECT_TRUE(answer.fin_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(fin_at + 1, f::kAck, 50002, 1000)).take);
  // A RST after the FIN is expected one past it.
  EXPECT_TRUE(c.w.judge(kPns, segment(fin_at + 1, f::kRst)).rst_acts);
}

TEST(TcpWindow, ALastDataSegmentSentAgainWithTheFinAppendedActs) {
  // On a lossy link the sender's last 16 bytes went (the router took them) but were lost
  // after it; the sender sends them again with its FIN: the FIN is at the end of the data.
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck | f::kPsh, 50001, 1000, 16)).take);
  const TcpVerdict again = c.w.judge(kPns, segment(c.pns_next(), f::kFin | f::kAck, 50001, 1000, 16));
  EXPECT_TRUE(again.take);
  EXPECT_TRUE(again.fin_acts);
  EXPECT_FALSE(again.anomaly);
  // The PAC's ACK of the FIN is in the window; a FIN inside data already sent is not.
  EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kAck, c.pns_next() + 17, 1000)).take);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next(), f::kFin | f::kAck, 50001, 1000, 8)).fin_acts);
}

TEST(TcpWindow, AFinAheadWhoseNumberTheDataPassesNeverActs) {
  // A FIN in the window but not where the sender's data ends (a guess, or forged): the data
  // goes past its number, and it is forgotten.
  Connection c(1000, 50000);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 10, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 5)).fin_acts);    // short of it
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 5, f::kAck, 50001, 1000, 20)).fin_acts);  // past it
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 25, f::kAck, 50001, 1000, 10)).fin_acts);
  // Data that came ahead of a gap with its FIN: the FIN acts when the gap fills.
  const std::uint32_t next = c.pns_next() + 35;
  EXPECT_FALSE(c.w.judge(kPns, segment(next + 10, f::kFin | f::kAck, 50001, 1000, 10)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(next, f::kAck, 50001, 1000, 10)).fin_acts);
}

TEST(TcpWindow, AForgedFinAheadDoesNotReplaceTheRealOne) {
  // The PNS's FIN overtook its last 30 bytes; an off-path host lands a FIN in the window
  // after it (or before it): when the 30 bytes come, the real FIN acts, and the PAC's ACK
  // of it is in the window. One FIN kept per side lost the real one: the connection and
  // its calls stayed until the idle timeout.
  for (const bool forged_first : {false, true}) {
    SCOPED_TRACE(forged_first ? "forged first" : "real first");
    Connection c(1000, 50000);
    const std::uint32_t fin_at = c.pns_next() + 30;
    const wire::TcpSegment real = segment(fin_at, f::kFin | f::kAck, 50001, 1000);
    const wire::TcpSegment forged = segment(fin_at + 300, f::kFin | f::kAck, 50001, 1000);
    EXPECT_FALSE(c.w.judge(kPns, forged_first ? forged : real).fin_acts);
    EXPECT_FALSE(c.w.judge(kPns, forged_first ? real : forged).fin_acts);
    EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30)).fin_acts);
    EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kAck, fin_at + 1, 1000)).take);
  }
}

TEST(TcpWindow, AFlockOfForgedFinsAheadDoesNotCrowdOutTheRealOne) {
  // More forged FINs than the window keeps, far ahead, and one the data passes: the real
  // FIN, nearer than the farthest, still takes a place and acts when its data comes.
  Connection c(1000, 50000);
  for (std::uint32_t i = 0; i < 6; ++i) {  // more than a side keeps (kMaxFinsAhead)
    EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 500 + 50 * i, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  }
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 10, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  const std::uint32_t fin_at = c.pns_next() + 30;
  EXPECT_FALSE(c.w.judge(kPns, segment(fin_at, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kAck, fin_at + 1, 1000)).take);
}

// Forged data far ahead moves the highest number seen; the FINs kept ahead are still
// weighed by how far they lie past the end of the sender's data with no gap, so when forged
// FINs fill the list it is one of them that goes, not the real FIN just past the gap.
TEST(TcpWindow, ForgedDataFarAheadDoesNotMakeTheRealFinAheadTheOneThatGoes) {
  Connection c(1000, 50000);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next() + 900, f::kAck, 50001, 1000, 10)).take);  // forged
  c.w.judge(kPns, segment(c.pns_next() + 30, f::kFin | f::kAck, 50001, 1000));              // real, ahead
  for (std::uint32_t i = 0; i < kMaxFinsAhead; ++i) {
    c.w.judge(kPns, segment(c.pns_next() + 920 + 10 * i, f::kFin | f::kAck, 50001, 1000));  // forged, past it
  }
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30)).fin_acts);
}

TEST(TcpWindow, ForgedDataAheadDoesNotEraseTheRealFinAhead) {
  // The PNS's FIN overtook its last 30 bytes; an off-path host lands 10 bytes of data in the
  // window past that FIN. The receiver still takes the real FIN when the 30 bytes come;
  // the highest number sent moved past it, yet no data of the PNS went over it.
  Connection c(1000, 50000);
  const std::uint32_t fin_at = c.pns_next() + 30;
  EXPECT_FALSE(c.w.judge(kPns, segment(fin_at, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_FALSE(c.w.judge(kPns, segment(fin_at + 70, f::kAck, 50001, 1000, 10)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 30)).fin_acts);
  EXPECT_TRUE(c.w.judge(kPac, segment(50001, f::kAck, fin_at + 1, 1000)).take);
}

TEST(TcpWindow, AForgedFinWithDataAheadDoesNotCloseOnTheNextRealData) {
  // An off-path host's guess lands in the window: 10 bytes and a FIN 200 ahead of the PNS's
  // data. The PNS's next segments do not reach that segment; its FIN must not act on them
  // (it did: the forged data had moved the end of what was sent up to the forged FIN).
  Connection c(1000, 50000);
  const TcpVerdict forged = c.w.judge(kPns, segment(c.pns_next() + 200, f::kFin | f::kAck, 50001, 1000, 10));
  EXPECT_FALSE(forged.fin_acts);
  EXPECT_EQ(forged.anomaly, TcpWindowAnomaly::FinOutOfSequence);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 50001, 1000, 20)).fin_acts);
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 20, f::kAck, 50001, 1000, 20)).fin_acts);
  // Data that starts inside the forged segment does not reach it from below either.
  EXPECT_FALSE(c.w.judge(kPns, segment(c.pns_next() + 205, f::kAck, 50001, 1000, 5)).fin_acts);
}

TEST(TcpWindow, AFinInsideDataAlreadySentNeverActs) {
  // The PNS sent 40 more bytes; a FIN whose number lies inside them, its data starting at
  // or before them, is old to the receiver (RFC 9293 3.10.7.4): no effect, and it is not
  // kept for later either.
  Connection c(1000, 50000);
  const std::uint32_t next = c.pns_next();
  EXPECT_TRUE(c.w.judge(kPns, segment(next, f::kAck, 50001, 1000, 40)).take);
  const TcpVerdict inside = c.w.judge(kPns, segment(next, f::kFin | f::kAck, 50001, 1000, 16));
  EXPECT_FALSE(inside.fin_acts);
  EXPECT_EQ(inside.anomaly, TcpWindowAnomaly::FinOutOfSequence);
  EXPECT_FALSE(c.w.judge(kPns, segment(next - 50, f::kFin | f::kAck, 50001, 1000, 60)).fin_acts);
  EXPECT_FALSE(c.w.judge(kPns, segment(next + 10, f::kFin | f::kAck, 50001, 1000)).fin_acts);
  EXPECT_FALSE(c.w.judge(kPns, segment(next, f::kAck, 50001, 1000, 16)).fin_acts);  // sent again
  // The real FIN, at the end of the 40 bytes, acts.
  EXPECT_TRUE(c.w.judge(kPns, segment(next + 40, f::kFin | f::kAck, 50001, 1000)).fin_acts);
}

TEST(TcpWindow, AFinOutsideTheReceiversWindowNeverActs) {
  // The PAC allowed 1000 octets past what it acknowledged (its window's right edge is the
  // PNS's next + 1000).
  Connection c(1000, 50000);
  const std::uint32_t next = c.pns_next();
  // Data from the expected number whose FIN lies past the right edge: the receiver trims
  // the segment to its window and the FIN with it (RFC 9293 3.10.7.4).
  const TcpVerdict past = c.w.judge(kPns, segment(next, f::kFin | f::kAck, 50001, 1000, 1001));
  EXPECT_FALSE(past.fin_acts);
  EXPECT_EQ(past.anomaly, TcpWindowAnomaly::FinOutOfSequence);
  Connection d(1000, 50000);
  // Far ahead, far behind, with or without data: out of the window, not taken, not kept.
  for (const std::uint32_t seq : {next + 1500, next + 0x80000000u, next - 900000, next - 3000}) {
    for (const std::size_t data : {std::size_t{0}, std::size_t{1400}}) {
      const TcpVerdict far = d.w.judge(kPns, segment(seq, f::kFin | f::kAck, 50001, 1000, data));
      EXPECT_FALSE(far.fin_acts) << seq << " " << data;
      EXPECT_FALSE(far.take) << seq << " " << data;
      EXPECT_EQ(far.anomaly, TcpWindowAnomaly::OutOfWindow) << seq << " " << data;
    }
  }
  // When the window has moved on and the data reaches the far FIN's number, it still does
  // not act: it was never kept.
  EXPECT_FALSE(d.w.judge(kPns, segment(next, f::kAck, 50001, 1000, 1000)).fin_acts);
  EXPECT_TRUE(d.w.judge(kPac, segment(50001, f::kAck, next + 1000, 1000)).take);
  const TcpVerdict reaches = d.w.judge(kPns, segment(next + 1000, f::kAck, 50001, 1000, 500));
  EXPECT_TRUE(reaches.take);
  EXPECT_FALSE(reaches.fin_acts);
}

TEST(TcpWindow, ASynNeverResetsALiveConnection) {
  Connection c(1000, 50000);
  const TcpVerdict again = c.w.judge(kPns, syn(777, std::nullopt, 1000));
  EXPECT_FALSE(again.take);
  EXPECT_EQ(again.anomaly, TcpWindowAnomaly::SynOnLive);
  EXPECT_EQ(c.w.judge(kPac, syn(9, std::nullopt, 1000, 778)).anomaly, TcpWindowAnomaly::SynOnLive);
  // The old numbers still hold.
  EXPECT_FALSE(c.w.judge(kPns, segment(778, f::kRst)).rst_acts);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kRst)).rst_acts);
  // The SYN retransmitted with its own number changes nothing and is no anomaly.
  const TcpVerdict retransmitted = c.w.judge(kPns, syn(1000, std::nullopt, 1000));
  EXPECT_FALSE(retransmitted.take);
  EXPECT_FALSE(retransmitted.anomaly);
}

TEST(TcpWindow, SequenceNumbersWrapAround) {
  Connection c(0xFFFFFFC0u, 0xFFFFFFF0u);  // the PNS's data and the PAC's ACK cross 2^32
  EXPECT_EQ(c.pns_next(), 0x25u);
  EXPECT_TRUE(c.w.judge(kPns, segment(c.pns_next(), f::kAck, 0xFFFFFFF1u, 1000, 500)).take);
  EXPECT_FALSE(c.w.judge(kPns, segment(0x25u + 5000, f::kAck, 0xFFFFFFF1u, 1000, 10)).take);
  EXPECT_EQ(c.w.judge(kPns, segment(0xFFFFFFF0u, f::kRst)).anomaly, TcpWindowAnomaly::RstInWindow);
  EXPECT_TRUE(c.w.judge(kPns, segment(0x25u + 500, f::kFin | f::kAck, 0xFFFFFFF1u, 1000)).fin_acts);
}

TEST(TcpWindow, WindowScaleFromBothSynsWidensTheWindow) {
  // RFC 7323: both SYNs carry the option, the PAC's window of 512 << 7 is 65536 octets.
  TcpWindow scaled;
  scaled.judge(kPns, syn(1000, 7, 512));
  scaled.judge(kPac, syn(5000, 7, 512, 1001));
  scaled.judge(kPac, segment(5001, f::kAck, 1001, 512));
  EXPECT_TRUE(scaled.judge(kPns, segment(1001 + 60000, f::kAck, 5001, 512, 10)).take);
  EXPECT_FALSE(scaled.judge(kPns, segment(1001 + 70000, f::kAck, 5001, 512, 10)).take);
  // Only one SYN with the option: no scaling in either direction.
  TcpWindow plain;
  plain.judge(kPns, syn(1000, std::nullopt, 512));
  plain.judge(kPac, syn(5000, 7, 512, 1001));
  plain.judge(kPac, segment(5001, f::kAck, 1001, 512));
  EXPECT_TRUE(plain.judge(kPns, segment(1001 + 500, f::kAck, 5001, 512, 10)).take);
  EXPECT_FALSE(plain.judge(kPns, segment(1001 + 600, f::kAck, 5001, 512, 10)).take);
}

TEST(TcpWindow, AnAckFromNowhereDoesNotSetTheWindow) {
  TcpWindow w;
  w.judge(kPns, syn(1000, std::nullopt, 1000));
  w.judge(kPac, syn(5000, std::nullopt, 1000, 1001));
  w.judge(kPac, segment(5001, f::kAck, 0, 0));  // acknowledges nothing the PNS sent
  // The window is still the SYN/ACK's 1000, not 0 + 0.
  EXPECT_TRUE(w.judge(kPns, segment(1001, f::kAck, 5001, 1000, 10)).take);
  // RFC 5961 5.2: nor is data whose ACK lies beyond what the PAC sent taken.
  EXPECT_EQ(w.judge(kPns, segment(1011, f::kAck, 9000, 1000, 10)).anomaly, TcpWindowAnomaly::OutOfWindow);
  EXPECT_FALSE(w.judge(kPns, segment(1001 + 2000, f::kAck, 5001, 1000, 10)).take);
}

TEST(TcpWindow, PickedUpWithoutTheHandshakeIsLiberalUntilTheWindowIsKnown) {
  TcpWindow w;
  EXPECT_TRUE(w.judge(kPns, segment(123456, f::kAck, 999, 1000, 10)).take);
  EXPECT_TRUE(w.judge(kPns, segment(923456, f::kAck, 999, 1000, 10)).take);
  EXPECT_TRUE(w.judge(kPac, segment(999, f::kAck, 923466, 1000)).take);
  // Scale unknown (no SYNs seen): the largest scale is assumed, a wide window.
  EXPECT_TRUE(w.judge(kPns, segment(923466 + 1000000, f::kAck, 999, 1000, 10)).take);
  EXPECT_EQ(w.judge(kPns, segment(923476, f::kRst)).anomaly, TcpWindowAnomaly::RstInWindow);
  // That data came after a gap: a RST at its end acts once the receiver acknowledged it
  // (its RCV.NXT is there), not before (RFC 5961 3.2).
  EXPECT_FALSE(w.judge(kPns, segment(923466 + 1000000 + 10, f::kRst)).rst_acts);
  EXPECT_TRUE(w.judge(kPac, segment(999, f::kAck, 923466 + 1000000 + 10, 1000)).take);
  EXPECT_TRUE(w.judge(kPns, segment(923466 + 1000000 + 10, f::kRst)).rst_acts);
}

}  // namespace
}  // namespace pptp::stream
