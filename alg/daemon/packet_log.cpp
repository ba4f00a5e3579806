// `--log-level debug`: one line per packet decision (verdict, kind, addresses) from the
// packet step, at most kPacketLogsPerSecond; what was left out is counted and said once a
// second, so a flood cannot turn the log into the bottleneck (issue 13).
#include "alg/daemon/daemon_loop.hpp"
#include "alg/wire/gre.hpp"

namespace pptp::daemon {

namespace {
std::string_view action_name(gateway::Action a) {
  switch (a) {
    case gateway::Action::Accept:
      return "accept";
    case gateway::Action::Drop:
      return "drop";
    case gateway::Action::Hold:
      return "hold";
  }
  return "?";
}
}  // namespace

void Daemon::log_packet(const nft::QueuedPacket& p, const gateway::Verdict& v, double t) {
  if (!packet_logs_.take(t)) return;
  // Only the IP header, only at this level: the gateway has parsed the packet for its decision.
  const auto ip = wire::parse_ipv4(p.payload);
  if (!ip) {
    log_->debug("packet id={} verdict={} kind=malformed length={}", p.id, action_name(v.action), p.payload.size());
    return;
  }
  const std::string_view kind = ip->protocol == wire::kIpProtocolTcp   ? "control"
                                : ip->protocol == wire::kIpProtocolGre ? "gre"
                                                                       : "other";
  log_->debug("packet id={} verdict={} kind={} source={} destination={} modified={}", p.id, action_name(v.action),
              kind, wire::to_string(ip->source), wire::to_string(ip->destination), v.modified);
}

void Daemon::report_packet_logs() {
  const std::uint64_t suppressed = packet_logs_.take_refused();
  if (suppressed == 0) return;
  log_->debug("packet_log_suppressed count={} limit_per_second={}", suppressed, kPacketLogsPerSecond);
}

}  // namespace pptp::daemon
