// The daemon's packet path (tracker, NAT table, rewrites, verdicts) on arbitrary packets.
// Input: records of [u8 flags][u16 length][IPv4 packet]; flags bit 0 attaches a public
// address (as conntrack would). Properties: a rewritten packet keeps a valid IPv4 checksum
// valid and has a valid TCP checksum; once everything has expired, no call, no Call-ID mapping
// and no policy charge is left. Inputs of odd length run under a policy (names, limits, a
// set-up rate, required authentication) that is reloaded half-way with on_reload: rejudge;
// two in three with the fast path on, fed counters for what was offloaded (none may remain).
#include <spdlog/sinks/null_sink.h>

#include <cstdlib>
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp;
  static auto log = std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  gateway::GatewayOptions options;
  options.wall_clock = [] { return policy::WallTime{2, 600}; };
  options.fast_path = size % 3 != 0;
  gateway::Gateway gw(options, log);
  const bool with_policy = size % 2 == 1;
  if (with_policy) gw.set_policy(make_policy(false));
  double time = 0;
  std::size_t pos = 0;
  std::vector<std::uint8_t> packet;
  const auto check_released = [&] {
    for (const auto& r : gw.take_released()) {
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
    const gateway::Verdict v = gw.process(packet, meta);
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
  if (!gw.admission().empty()) std::abort();
  if (!gw.offloaded_calls().empty()) std::abort();
  return 0;
}
