// The daemon's packet path (tracker, NAT table, rewrites, verdicts) on arbitrary packets.
// Input: records of [u8 flags][u16 length][IPv4 packet]; flags bit 0 attaches a public
// address (as conntrack would). Properties: a rewritten packet keeps a valid IPv4 checksum
// valid and has a valid TCP checksum; once everything has expired, no call, no Call-ID mapping
// and no policy charge is left. Inputs of odd length run under a policy (names, limits, a
// set-up rate, required authentication) that is reloaded half-way with on_reload: rejudge;
// two in three with the fast path on, fed counters for what was offloaded (none may remain).
// A Call-Disconnect-Notify from the server taken whole and in order (RFC 2637 2.13) leaves
// toward the client with the Call ID the client knows: as it is where it names the
// server's own Call ID of a call, or no call; the client's inside Call ID where it names
// (Windows) a translated call's outside one, and that call and its outside Call ID are gone.
// Held segments (docs/packet-path.md, "Held segments"): every packet held is handed back
// exactly once, accepted or dropped, by the time everything has expired (no time release,
// none lost), and no Call ID reservation is left.
// What left is never read again (docs/packet-path.md, "What was read is what leaves"): a
// client's stream never rewinds (a deferred call set-up) below a byte of a segment the
// gateway let through in order.
#include <spdlog/sinks/null_sink.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "gateway/gateway.hpp"
#include "nat/checksum.hpp"

namespace {

std::shared_ptr<const pptp::policy::Policy> make_policy(bool second) {
  using namespace pptp::policy;
  auto p = std::make_shared<Policy>();
  p->users.push_back(User{"alice", 1, {}, {"alice"}, Limits{std::nullopt, 2}});
  p->users.push_back(User{"lan", 2, {Prefix{{0xC0000200}, 24}}, {}, {}});  // 192.0.2.0/24
  Rule by_name{"alice", 3, false, {0}, {}, {}, {}, Action::Allow, {}};
  Rule by_address{"lan", 4, false, {1}, {}, {}, {Prefix{{0xC6336400}, 24}}, second ? Action::Deny : Action::Allow, {}};
  p->rules = {by_name, by_address};
  p->per_source = Limits{4, 4};
  p->per_server_calls = 16;
  p->setup_rate = SetupRate{5, 3};
  p->require_authentication = !second;
  p->authentication_packets = 8;
  p->on_reload = OnReload::Rejudge;
  return p;
}

// A server's Call-Disconnect-Notify alone in a segment, on a connection whose stream sits
// at a message boundary: what must leave, judged on the state before the packet.
struct DisconnectCheck {
  const pptp::track::ControlConnection* connection = nullptr;
  std::size_t call_id_at = 0;  // in the packet
  std::uint16_t named = 0, expected = 0;
  bool windows_translated = false;
  std::uint64_t delivered = 0;
};

std::optional<DisconnectCheck> disconnect_check(const pptp::gateway::Gateway& gateway, pptp::Bytes packet) {
  using namespace pptp;
  const auto ip = wire::parse_ipv4(packet);
  if (!ip || ip->protocol != wire::kIpProtocolTcp) return std::nullopt;
  const auto tcp = wire::parse_tcp(ip->payload);
  if (!tcp || tcp->source_port != wire::kPptpPort || tcp->has(wire::tcp_flags::kSyn)) return std::nullopt;
  const auto m = wire::parse_control_message(tcp->payload);
  if (!m || m->type() != wire::ControlMessageType::CallDisconnectNotify || tcp->payload.size() != m->spec().length) {
    return std::nullopt;
  }
  const auto* c = gateway.tracker().find_connection({ip->destination, tcp->destination_port}, {ip->source, wire::kPptpPort});
  if (c == nullptr || c->state != track::ConnectionState::Established) return std::nullopt;
  const stream::Reassembler& s = c->streams[static_cast<std::size_t>(track::Direction::PacToPns)];
  if (s.state() != stream::StreamState::Synced || s.buffered_bytes() != 0) return std::nullopt;
  DisconnectCheck d{c, ip->header_length + tcp->header_length + m->spec().call_id_offset, 0, 0, false,
                    s.delivered_bytes()};
  d.named = d.expected = load_u16(packet.data() + d.call_id_at);
  if (c->find_by_pac_call_id(d.named) == nullptr) {
    const nat::CallMapping* map = gateway.translator().find_outside_on_connection(c->id, d.named);
    if (map != nullptr && map->translated()) {
      d.expected = map->inside_call_id;
      d.windows_translated = true;
    }
  }
  return d;
}

// Only where this segment's message was the one the tracker read (whole, in order).
void verify_disconnect(const pptp::gateway::Gateway& gateway, const DisconnectCheck& d, pptp::Bytes packet) {
  using namespace pptp;
  const stream::Reassembler& s = d.connection->streams[static_cast<std::size_t>(track::Direction::PacToPns)];
  if (s.delivered_bytes() != d.delivered + wire::spec_of(wire::ControlMessageType::CallDisconnectNotify).length ||
      s.buffered_bytes() != 0) {
    return;
  }
  if (load_u16(packet.data() + d.call_id_at) != d.expected) std::abort();
  if (d.windows_translated) {
    if (gateway.translator().find_outside_on_connection(d.connection->id, d.named) != nullptr) std::abort();
    if (d.connection->find_by_pns_call_id(d.expected) != nullptr) std::abort();
  }
}

// The end of the client's bytes that left in order, per control connection: a deferral
// rewinds the stream to the set-up it leaves unread, never below these.
class LeftInOrder {
 public:
  struct Seen {
    pptp::wire::Endpoint pns, pac;
    std::uint64_t id = 0;  // the connection's: it may go during process()
    std::uint32_t data_end = 0;
  };
  // The client's connection the packet is data of, before process().
  static std::optional<Seen> before(const pptp::gateway::Gateway& gateway, pptp::Bytes packet) {
    using namespace pptp;
    const auto ip = wire::parse_ipv4(packet);
    if (!ip || ip->protocol != wire::kIpProtocolTcp) return std::nullopt;
    const auto tcp = wire::parse_tcp(ip->payload);
    if (!tcp || tcp->destination_port != wire::kPptpPort || tcp->payload.empty()) return std::nullopt;
    const auto* c = gateway.tracker().find_connection({ip->source, tcp->source_port}, {ip->destination, wire::kPptpPort});
    if (c == nullptr) return std::nullopt;
    const std::uint32_t start = tcp->sequence + (tcp->has(wire::tcp_flags::kSyn) ? 1u : 0u);
    return Seen{c->pns, c->pac, c->id, start + static_cast<std::uint32_t>(tcp->payload.size())};
  }
  void after(const pptp::gateway::Gateway& gateway, const Seen& seen, bool accepted) {
    using namespace pptp;
    const track::ControlConnection* c = gateway.tracker().find_connection(seen.pns, seen.pac);
    if (c == nullptr || c->id != seen.id || c->state == track::ConnectionState::Closed) return;  // gone
    const stream::Reassembler& s = c->streams[static_cast<std::size_t>(track::Direction::PnsToPac)];
    if (s.state() != stream::StreamState::Synced) return;
    auto [it, fresh] = left_.try_emplace(c->id, s.next_sequence());
    if (static_cast<std::int32_t>(s.next_sequence() - it->second) < 0) std::abort();  // rewound below
    if (!accepted) return;
    const std::uint32_t in_order = static_cast<std::int32_t>(seen.data_end - s.next_sequence()) < 0 ? seen.data_end
                                                                                                    : s.next_sequence();
    if (static_cast<std::int32_t>(in_order - it->second) > 0) it->second = in_order;
  }

 private:
  std::map<std::uint64_t, std::uint32_t> left_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp;
  static auto log = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  gateway::GatewayOptions options;
  options.wall_clock = [] { return policy::WallTime{2, 600}; };
  options.fast_path = size % 3 != 0;
  options.verify_checksums = size % 5 == 0;  // mostly off: random bytes rarely sum right
  gateway::Gateway gw(options, log);
  const bool with_policy = size % 2 == 1;
  if (with_policy) gw.set_policy(make_policy(false));
  double time = 0;
  std::size_t pos = 0;
  std::vector<std::uint8_t> packet;
  std::set<std::uint64_t> held;
  LeftInOrder left_in_order;
  const auto check_released = [&] {
    for (const auto& r : gw.take_released()) {
      if (held.erase(r.packet_id) != 1) std::abort();
      if (r.action == gateway::Action::Drop) {  // a drop hands back no bytes
        if (r.modified || !r.bytes.empty()) std::abort();
        continue;
      }
      if (r.action != gateway::Action::Accept) std::abort();
      const auto ip = wire::parse_ipv4(r.bytes);
      if (!ip || (r.modified && !nat::tcp_checksum_ok(r.bytes, ip->header_length))) std::abort();
    }
  };
  for (int n = 0; n < 256 && pos + 3 <= size; ++n) {
    const std::uint8_t flags = data[pos];
    const std::size_t len = std::min<std::size_t>((std::size_t{data[pos + 1]} << 8) | data[pos + 2], size - pos - 3);
    packet.assign(data + pos + 3, data + pos + 3 + len);
    if (with_policy && n == 8) gw.set_policy(make_policy(true));
    pos += 3 + len;
    gateway::PacketMeta meta{time += 1, static_cast<std::uint64_t>(n), std::nullopt};
    if (flags & 1) meta.outside_address = wire::Ipv4Address{0xC6336401};  // 198.51.100.1
    // A rewrite keeps a right IPv4 checksum right (captures may hold offloaded ones).
    const auto before = wire::parse_ipv4(packet);
    const bool ip_ok = before && nat::ipv4_header_checksum_ok(packet, before->header_length);
    const auto disconnect = disconnect_check(gw, packet);
    const auto client_data = LeftInOrder::before(gw, packet);
    const gateway::Verdict v = gw.process(packet, meta);
    if (client_data) left_in_order.after(gw, *client_data, v.action == gateway::Action::Accept);
    if (v.action == gateway::Action::Hold) held.insert(meta.packet_id);
    if (disconnect && v.action == gateway::Action::Accept) verify_disconnect(gw, *disconnect, packet);
    if (n % 16 == 0) check_released();
    if (n % 8 == 0) {
      // The kernel's counters for what has been handed over (and a stale one).
      std::vector<gateway::OffloadCount> counts;
      for (const auto& c : gw.offloaded_calls()) {
        counts.push_back({true, c, static_cast<std::uint64_t>(n), 0, std::nullopt});
        counts.push_back({false, c, static_cast<std::uint64_t>(n) / 2, 0, c});
      }
      counts.push_back({true, gateway::OffloadedCall{}, 7, 0, std::nullopt});
      // A restart's leftovers, adopted mid-run: they must idle out like the rest.
      if (n == 64 && !counts.empty()) gw.adopt_offloaded(counts, time);
      gw.note_offload_counts(counts, time);
      (void)gw.take_offload_changes();
    }
    if (v.modified) {
      const auto ip = wire::parse_ipv4(packet);
      if (!ip || (ip_ok && !nat::ipv4_header_checksum_ok(packet, ip->header_length))) std::abort();
      if (ip->protocol == wire::kIpProtocolTcp && !nat::tcp_checksum_ok(packet, ip->header_length)) std::abort();
    }
  }
  check_released();
  gw.expire(time + 100000);
  gw.expire(time + 200000);
  check_released();
  if (gw.tracker().call_count() != 0 || gw.translator().size() != 0) std::abort();
  if (!held.empty() || gw.translator().reservations() != 0) std::abort();
  if (!gw.admission().empty()) std::abort();
  if (!gw.offloaded_calls().empty()) std::abort();
  return 0;
}
