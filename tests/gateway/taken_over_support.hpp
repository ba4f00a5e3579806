// Shared by the taken-over tests (taken_over_test.cpp, taken_over_head_test.cpp): the HA
// node's part as a fake, and a gateway with one call taken over at a promotion.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway.hpp"
#include "tests/gateway/harness.hpp"

namespace pptp::gateway::harness {

// The HA node's part, as a fake: one call taken over on `pns`'s connection (the client's
// Call ID 7, the server's 500, outside 8), found by any of its Call IDs and handed back once
// something names it.
struct OneTakenOver final : CallObserver {
  wire::Endpoint pns;
  OffloadedCall call;
  std::vector<TakenOverEnd> heard;
  bool ended = false;
  void call_changed(const track::ControlConnection&, const track::Call&, const CallRecord&,
                    const nat::CallMapping*) override {}
  void call_ended(const track::ControlConnection&, const track::Call&) override {}
  std::optional<TakenOverIds> taken_over_call(const track::ControlConnection& c, CallIdSide by,
                                              std::uint16_t id) const override {
    if (ended || c.pns != pns) return std::nullopt;
    const std::uint16_t own = by == CallIdSide::Pns   ? call.inside_call_id
                              : by == CallIdSide::Pac ? call.server_call_id
                                                      : call.outside_call_id;
    if (id != own) return std::nullopt;
    return TakenOverIds{call.inside_call_id, call.server_call_id, call.outside_call_id};
  }
  bool holds_taken_over(const track::ControlConnection& c) const override { return !ended && c.pns == pns; }
  std::optional<track::ResumePositions> positions;  // the replica's, if the test gives them
  std::optional<track::ResumePositions> resume_positions(const track::ControlConnection& c) const override {
    if (ended || c.pns != pns) return std::nullopt;
    return positions;
  }
  std::array<std::optional<stream::ResumeHead>, 2> heads;  // the replica's, by direction
  std::optional<stream::ResumeHead> resume_head(const track::ControlConnection& c, track::Direction d) const override {
    if (ended || c.pns != pns) return std::nullopt;
    return heads[static_cast<std::size_t>(d)];
  }
  std::vector<OffloadedCall> end_taken_over(const track::ControlConnection& c, const TakenOverEnd& e) override {
    heard.push_back(e);
    if (ended || c.pns != pns || (e.pns_call_id && *e.pns_call_id != call.inside_call_id)) return {};
    ended = true;
    return {call};
  }
  // Its user, as the HA node would match a `ctl kill --user`.
  std::string user = "alice";
  wire::Endpoint pac{kServer, wire::kPptpPort};
  std::vector<TakenOverKill> kill_taken_over(const KillRequest& which) override {
    if (ended || which.call || (!which.user && !which.client)) return {};
    if ((which.user && *which.user != user) || (which.client && *which.client != pns.address)) return {};
    ended = true;
    return {TakenOverKill{pns, pac, call}};
  }
};

inline GatewayOptions fast_path_on() {
  GatewayOptions o;
  o.fast_path = true;
  o.timeouts.connection_idle = 100;  // the connection idles out long before the call would
  o.timeouts.call_idle = 1000;
  return o;
}

// A segment that acknowledges `ack` (the harness acknowledges all the other side sent).
inline Packet acking(Packet p, std::uint32_t ack) {
  store_u32(&p[28], ack);
  return checksummed(std::move(p));
}

struct Promoted {
  Harness h{fast_path_on()};
  OneTakenOver taken;
  Client a{{addr("192.0.2.11"), 40001}};
  explicit Promoted(bool exchange = true) {
    taken.pns = a.pns;
    taken.call = OffloadedCall{kServer, kPublic, a.pns.address, 8, 7, 500};
    h.gw.set_call_observer(&taken);
    h.gw.adopt_offloaded({OffloadCount{true, taken.call, 0, 0, taken.call}}, h.now);
    (void)h.gw.take_offload_changes();
    if (exchange) prove_window();
  }
  // The connection picked up mid-stream, on a message boundary; Echo passes and ends
  // nothing. Each side acknowledges the other's data: the window is proven both ways.
  void prove_window() {
    h.pass(to_pac(test::bytes_of(wire::EchoRequest{1})));
    wire::EchoReply reply;
    reply.identifier = 1;
    reply.result_code = 1;
    h.pass(to_pns(test::bytes_of(reply)));
    h.pass(to_pac({}, flags::kAck));
  }
  // The client's segments with the acknowledgments its TCP sends.
  Packet to_pac(const Packet& data, std::uint8_t f = flags::kAck | flags::kPsh) {
    return acking(a.to_pac(data, f), a.pac_seq);
  }
  Packet to_pns(const Packet& data, std::uint8_t f = flags::kAck | flags::kPsh) {
    return acking(a.to_pns(data, f), a.pns_seq);
  }
  bool untouched() { return offloaded() && h.gw.take_offload_changes().empty(); }
  bool offloaded() const {
    const auto calls = h.gw.offloaded_calls();
    return std::ranges::find(calls, taken.call) != calls.end();
  }
  // The removal the daemon applies: exactly the taken-over call's elements.
  bool removed() {
    const auto changes = h.gw.take_offload_changes();
    return changes.size() == 1 && !changes[0].add && changes[0].call == taken.call;
  }
  // Another client asks the same server for the outside Call ID the call had: it keeps
  // it only once that ID is free.
  std::uint16_t next_port = 40100;
  bool outside_call_id_free() {
    Client b{{addr("192.0.2.12"), next_port++}};
    h.start(b);
    Packet p = b.to_pac(test::bytes_of(ocrq(8)));
    const Verdict v = h.run(p);
    return v.action == Action::Accept && tcp_u16(p, 12) == 8;
  }
};

inline Packet disconnect_notify(std::uint16_t call_id) {
  wire::CallDisconnectNotify cdn;
  cdn.call_id = call_id;
  cdn.result_code = 3;
  return test::bytes_of(cdn);
}

}  // namespace pptp::gateway::harness
