#include "alg/daemon/gateway.hpp"

#include <spdlog/fmt/fmt.h>

#include <ctime>
#include <tuple>

#include "alg/track/packet_path.hpp"
#include "alg/wire/gre.hpp"

namespace pptp::daemon {

namespace {
using track::Direction;
using wire::to_string;

std::size_t index_of(Direction d) { return static_cast<std::size_t>(d); }

std::string describe(const track::ControlConnection& c) {
  return fmt::format("connection={} pns={} pac={}", c.id, to_string(c.pns), to_string(c.pac));
}

std::string call_ids(const track::Call& call) {
  const auto id = [](const std::optional<std::uint16_t>& v) {
    return v ? std::to_string(*v) : std::string("-");
  };
  return fmt::format("call={} pns_call_id={} pac_call_id={}", call.id, id(call.pns_call_id),
                     id(call.pac_call_id));
}

std::string printable_name(const std::string& name) {
  return printable(Bytes(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()));
}

nlohmann::json gre_json(const track::GreFlowStats& s) {
  return {{"packets", s.packets}, {"payload_bytes", s.payload_bytes}};
}
}  // namespace

Gateway::Gateway(GatewayOptions options, std::shared_ptr<spdlog::logger> log, OutsideResolver* resolver)
    : options_(options), log_(std::move(log)), resolver_(resolver), tracker_(*this, options.timeouts) {
  tracker_.set_inline(true);
}

Verdict Gateway::process(std::span<std::uint8_t> packet, const PacketMeta& meta) {
  current_ = &meta;
  drop_current_ = false;
  Verdict v;
  const auto ip = wire::parse_ipv4(packet);
  if (ip && ip->protocol == wire::kIpProtocolGre) {
    v = process_gre(packet, *ip, meta);
  } else {
    v = process_control(packet, meta);
  }
  current_ = nullptr;
  return v;
}

Verdict Gateway::process_control(std::span<std::uint8_t> packet, const PacketMeta& meta) {
  // Under a policy, a control connection is judged before the tracker opens it: a client the
  // rules or limits refuse gets nothing through, not even its SYN.
  std::optional<policy::Charge> admitted;
  if (policy_) {
    const auto ip = wire::parse_ipv4(packet);
    const auto tcp = ip && ip->protocol == wire::kIpProtocolTcp ? wire::parse_tcp(ip->payload)
                                                                : Result<wire::TcpSegment, wire::IpError>(
                                                                      unexpected(wire::IpError{}));
    if (tcp && tcp->destination_port == wire::kPptpPort) {
      const wire::Endpoint pns{ip->source, tcp->source_port}, pac{ip->destination, tcp->destination_port};
      const track::ControlConnection* known = tracker_.find_connection(pns, pac);
      const bool new_syn = tcp->has(wire::tcp_flags::kSyn) && !tcp->has(wire::tcp_flags::kAck);
      if (known == nullptr || (known->state == track::ConnectionState::Closed && new_syn)) {
        admitted = admit_connection(pns, pac, meta.time);
        if (!admitted) {
          ++counters_.control_policy_dropped;
          return {Action::Drop, false};
        }
      }
    }
  }
  const track::PacketOutcome out = track::handle_ipv4(tracker_, meta.time, packet);
  pending_allocation_.reset();  // a request the tracker refused allocates nothing
  if (admitted) {
    // The connection holds its share of the limits until it closes; a segment that opened
    // nothing (a bare ACK) gives it back at once.
    track::ControlConnection* opened = out.kind == track::PacketKind::Control ? out.segment.connection : nullptr;
    if (opened != nullptr && opened->state != track::ConnectionState::Closed && !nat_of(*opened).charge) {
      nat_of(*opened).charge = *admitted;
    } else {
      admission_.release_connection(*admitted);
    }
  }
  if (out.kind == track::PacketKind::Malformed) {
    ++counters_.malformed_dropped;
    return {Action::Drop, false};
  }
  if (out.kind != track::PacketKind::Control) {
    ++counters_.other_passed;
    return {};
  }
  ++counters_.control_segments;
  track::ControlConnection* c = out.segment.connection;
  if (c == nullptr) return {};
  if (out.segment.refused) {
    // Too far ahead of a gap to keep: not forwarded, so the client or server sends it again
    // in order (a segment lost before the queue, then a burst behind it).
    ++counters_.control_refused;
    return {Action::Drop, false};
  }
  ConnectionNat& n = nat_of(*c);
  const std::size_t ihl = static_cast<std::size_t>(packet[0] & 0x0f) * 4;
  const bool to_pac = load_u16(packet.data() + ihl + 2) == wire::kPptpPort;
  const Direction dir = to_pac ? Direction::PnsToPac : Direction::PacToPns;
  if (dir == Direction::PnsToPac && n.refused_sequence) {
    // The set-up we could not map, its retransmission, and any data after it: the request
    // must not reach the server with a Call ID that collides, and the server could not
    // deliver what follows it anyway. Segments without data (the PNS's ACKs) still pass.
    const std::uint32_t seq = load_u32(packet.data() + ihl + 4);
    const std::size_t th = static_cast<std::size_t>(packet[ihl + 12] >> 4) * 4;
    const std::size_t len = packet.size() > ihl + th ? packet.size() - ihl - th : 0;
    const auto end = static_cast<std::uint32_t>(seq + len);
    if (len > 0 && static_cast<std::int32_t>(end - *n.refused_sequence) > 0) drop_current_ = true;  // serial
  }
  if (drop_current_) {
    ++counters_.control_dropped;
    return {Action::Drop, false};
  }
  // Segments held for this direction go once the message they cut is whole (or the stream
  // can no longer complete it); this one is held if it ends inside a message.
  const stream::Reassembler& stream = c->streams[index_of(dir)];
  const bool open = stream.state() == stream::StreamState::Synced && c->state != track::ConnectionState::Closed;
  const bool cut = open && stream.buffered_bytes() > 0 && !stream.has_gap();
  if (!cut) release_held(n, index_of(dir), false);
  const std::size_t th = static_cast<std::size_t>(packet[ihl + 12] >> 4) * 4;
  auto& held = n.held[index_of(dir)];
  if (cut && packet.size() > ihl + th && held.size() < kMaxHeldSegments) {
    held.push_back({meta.packet_id, meta.time, std::vector<std::uint8_t>(packet.begin(), packet.end())});
    ++counters_.control_held;
    return {Action::Hold, false};
  }
  if (nat::patch_tcp_payload(packet, n.patches[index_of(dir)])) {
    ++counters_.control_rewritten;
    return {Action::Accept, true};
  }
  return {};
}

Verdict Gateway::process_gre(std::span<std::uint8_t> packet, const wire::Ipv4Packet& ip,
                             const PacketMeta& meta) {
  bool modified = false;
  // Server to client: the key is the Call ID the server was told; find the client.
  if (const auto gre = wire::parse_gre(ip.payload)) {
    const nat::CallMapping* m = translator_.find_outside(ip.source, ip.destination, gre->header.call_id);
    if (m != nullptr && (m->inside != m->outside || m->translated())) {
      if (m->inside != ip.destination) nat::set_ipv4_destination(packet, m->inside);
      if (m->translated()) nat::set_gre_call_id(packet, m->inside_call_id);
      modified = true;
    }
  }
  const auto view = modified ? wire::parse_ipv4(packet) : Result<wire::Ipv4Packet, wire::IpError>(ip);
  if (!view) {  // cannot happen: the rewrite keeps the header valid; keep it defined
    ++counters_.malformed_dropped;
    return {Action::Drop, false};
  }
  const track::GreOutcome out = tracker_.on_gre(meta.time, *view);
  switch (out.verdict) {
    case track::GreVerdict::NotPptp:
      ++counters_.gre_not_pptp_passed;  // another GRE tunnel: not ours to judge
      return {Action::Accept, modified};
    case track::GreVerdict::Malformed:
      ++counters_.malformed_dropped;
      return {Action::Drop, false};
    case track::GreVerdict::UnknownCall:
      if (options_.allow_unknown_gre) {
        ++counters_.gre_unknown_passed;
        return {Action::Accept, modified};
      }
      ++counters_.gre_unknown_dropped;
      return {Action::Drop, false};
    case track::GreVerdict::Matched:
      break;
  }
  if (policy_ && out.call != nullptr) {
    if (const auto it = call_policy_.find(out.call->id); it != call_policy_.end()) {
      CallPolicy& cp = it->second;
      // The name had its chance: judge the call with what was seen (docs/policy.md).
      if (cp.outcome == policy::Outcome::Pending &&
          out.call->gre[0].packets + out.call->gre[1].packets >= policy_->authentication_packets) {
        judge_again(*out.connection, *out.call, cp, "call_authentication");
      }
      if (cp.outcome == policy::Outcome::Deny) {
        ++counters_.gre_policy_dropped;
        return {Action::Drop, false};
      }
    }
  }
  // Once its first packets have been seen here, a call's GRE can go to the kernel.
  if (options_.fast_path && out.call != nullptr) maybe_offload(*out.connection, *out.call);
  // Client to server GRE is tracked by conntrack, so the operator's masquerade rule
  // translates its source like any other packet; it passes here as it is.
  ++(out.direction == Direction::PacToPns ? counters_.gre_to_pns : counters_.gre_to_pac);
  if (modified) ++counters_.gre_rewritten;
  return {Action::Accept, modified};
}

Gateway::ConnectionNat& Gateway::nat_of(const track::ControlConnection& c) {
  auto [it, inserted] = nat_.try_emplace(c.id);
  ConnectionNat& n = it->second;
  if (inserted) n.outside = c.pns.address;
  // The conntrack binding is there from the first packet after the SYN left the router.
  if (current_ != nullptr && current_->outside_address) {
    n.outside = *current_->outside_address;
    n.outside_known = true;
  }
  return n;
}

void Gateway::on_message_bytes(const track::ControlConnection& c, Direction d,
                               std::span<std::uint8_t> message, std::uint32_t sequence) {
  const auto type = static_cast<wire::ControlMessageType>(load_u16(message.data() + 8));
  if (wire::find_spec(static_cast<std::uint16_t>(type)) == nullptr) return;
  const nat::CallIdField field = nat::call_id_field(type, d == Direction::PnsToPac);
  if (field.rewrite == nat::CallIdRewrite::None || field.offset + 2u > message.size()) return;
  ConnectionNat& n = nat_of(c);
  std::uint8_t* at = message.data() + field.offset;
  const std::uint16_t id = load_u16(at);
  const nat::CallMapping* m = nullptr;
  switch (field.rewrite) {
    case nat::CallIdRewrite::Allocate:
      // Allocated only once the tracker has accepted the call (on_call_changed): a request
      // it refuses (wrong state, duplicate, over the call limit) must not take a Call ID.
      pending_allocation_ = PendingAllocation{c.id, id, sequence + field.offset, d};
      return;
    case nat::CallIdRewrite::ToOutside:
      m = translator_.find_inside(c.id, id);
      if (m != nullptr && m->translated()) n.patches[index_of(d)].add(sequence + field.offset, m->outside_call_id);
      return;
    case nat::CallIdRewrite::DisconnectCallId:
      // RFC 2637 2.13: the PAC's own Call ID, passed as it is when it names a call here.
      // Otherwise it is the PNS's outside Call ID (Windows servers), translated back.
      if (c.find_by_pac_call_id(id) != nullptr) return;
      [[fallthrough]];
    case nat::CallIdRewrite::ToInside:
      m = translator_.find_outside_on_connection(c.id, id);
      if (m != nullptr && m->translated()) {
        store_u16(at, m->inside_call_id);  // the tracker reads the inside view
        n.patches[index_of(d)].add(sequence + field.offset, m->inside_call_id);
      }
      return;
    case nat::CallIdRewrite::None:
      return;
  }
}

void Gateway::log_anomaly(std::string_view name, const std::string& text, double now) {
  // One bucket per anomaly name; a stream of hostile packets costs a counter, not a log line.
  const std::size_t slot = std::hash<std::string_view>{}(name) % log_buckets_.size();
  LogBucket& b = log_buckets_[slot];
  if (now - b.window_start > kLogWindow) {
    if (b.suppressed > 0) log_->warn("anomaly_suppressed kind={} lines={}", name, b.suppressed);
    b = LogBucket{now, 0, 0};
  }
  if (b.lines >= kLogBurst) {
    ++b.suppressed;
    return;
  }
  ++b.lines;
  log_->warn("anomaly kind={} {}", name, text);
}

void Gateway::on_anomaly(const track::AnomalyEvent& e) {
  std::string where = e.connection != nullptr ? describe(*e.connection) : std::string("connection=-");
  if (e.direction) where += fmt::format(" direction={}", track::name_of(*e.direction));
  log_anomaly(track::name_of(e.anomaly), fmt::format("{} detail=\"{}\"", where, e.detail),
              current_ != nullptr ? current_->time : 0);
}

policy::WallTime Gateway::wall_time() const {
  if (options_.wall_clock) return options_.wall_clock();
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  return policy::WallTime{static_cast<std::uint8_t>((local.tm_wday + 6) % 7),
                          static_cast<std::uint16_t>(local.tm_hour * 60 + local.tm_min)};
}

void Gateway::audit(std::string_view scope, policy::Outcome outcome, const std::string& rule,
                    const policy::Charge& who, const std::string& name, const std::string& reason,
                    const std::string& where) {
  // One line per decision: who, to where, which rule or limit, and what happened.
  const auto line = fmt::format("policy_decision scope={} verdict={} rule=\"{}\" user={} source={} server={} "
                                "ppp_name=\"{}\" reason=\"{}\" {}",
                                scope, policy::name_of(outcome), rule, who.user.empty() ? "-" : who.user,
                                to_string(who.source), to_string(who.server), name, reason, where);
  if (outcome == policy::Outcome::Deny) {
    log_->warn("{}", line);
  } else {
    log_->info("{}", line);
  }
}

template <typename Limit>
Gateway::Judgement Gateway::judge_new(wire::Ipv4Address pns, wire::Ipv4Address pac, Limit&& limit) const {
  // The rules first (by address: no PPP name yet), then the limits of whom they name.
  const policy::Decision d = policy::decide(*policy_, policy::Subject{pns, pac, std::nullopt, false}, wall_time());
  Judgement j{d, policy::Charge{pns, d.user ? policy_->users[*d.user].name : std::string(), pac}, d.outcome, d.reason};
  if (j.outcome != policy::Outcome::Deny) {
    if (auto hit = limit(j.who, d.user)) {
      j.outcome = policy::Outcome::Deny;
      j.reason = "limit " + *hit;
    }
  }
  return j;
}

std::optional<policy::Charge> Gateway::admit_connection(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                                        double now) {
  auto [d, who, outcome, reason] = judge_new(pns.address, pac.address, [&](const policy::Charge& w, auto user) {
    return admission_.admit_connection(*policy_, w, user);
  });
  const std::string where = fmt::format("pns={} pac={}", to_string(pns), to_string(pac));
  if (outcome != policy::Outcome::Deny) {
    audit("connection", outcome, policy::rule_name(*policy_, d.rule), who, "", reason, where);
    return who;
  }
  ++counters_.connections_denied;
  // Retransmitted SYNs are judged each time, logged once a minute.
  const auto key = std::make_pair(pns, pac);
  const auto seen = denied_logged_.find(key);
  if (seen == denied_logged_.end() || now - seen->second >= kDeniedLogInterval) {
    if (denied_logged_.size() >= kMaxDeniedRemembered) denied_logged_.clear();
    denied_logged_[key] = now;
    audit("connection", outcome, policy::rule_name(*policy_, d.rule), who, "", reason, where);
  }
  return std::nullopt;
}

void Gateway::refuse_call(ConnectionNat& n, std::uint32_t sequence) {
  // The request, its retransmissions and what follows it are dropped (process_control): the
  // server never sees it, and cannot take anything past it (TCP delivers in order), so a
  // later refusal does not replace the first. RFC 2637 has no way to refuse a call from the
  // middle of the stream; the proxy mode can answer with a result code instead.
  if (!n.refused_sequence || static_cast<std::int32_t>(sequence - *n.refused_sequence) < 0) {
    n.refused_sequence = sequence;
  }
  drop_current_ = true;
}

bool Gateway::admit_call(const track::ControlConnection& c, const track::Call& call, const PendingAllocation& p) {
  const double now = current_ != nullptr ? current_->time : 0;
  auto [d, who, outcome, reason] = judge_new(c.pns.address, c.pac.address, [&](const policy::Charge& w, auto user) {
    return admission_.admit_call(*policy_, w, user, now);
  });
  audit("call", outcome, policy::rule_name(*policy_, d.rule), who, "", reason,
        fmt::format("{} {}", describe(c), call_ids(call)));
  if (outcome == policy::Outcome::Deny) {
    ++counters_.calls_denied;
    refuse_call(nat_of(c), p.sequence);
    return false;
  }
  call_policy_[call.id] = CallPolicy{outcome, policy::rule_name(*policy_, d.rule), std::move(who)};
  return true;
}

void Gateway::judge_again(const track::ControlConnection& c, const track::Call& call, CallPolicy& cp,
                          std::string_view scope) {
  if (!policy_ || cp.outcome == policy::Outcome::Deny) return;
  policy::Subject s{c.pns.address, c.pac.address, std::nullopt, false};
  if (call.user) s.name = call.user->name;
  s.name_final = call.gre[0].packets + call.gre[1].packets >= policy_->authentication_packets;
  const policy::Decision d = policy::decide(*policy_, s, wall_time());
  std::string reason = d.reason;
  policy::Outcome outcome = d.outcome;
  // The name tells who the call belongs to: count it against that user's limit.
  if (outcome != policy::Outcome::Deny && d.user) {
    if (auto hit = admission_.move_call(*policy_, cp.charge, *d.user)) {
      outcome = policy::Outcome::Deny;
      reason = "limit " + *hit;
    }
  }
  if (outcome == cp.outcome && cp.rule == policy::rule_name(*policy_, d.rule) && scope == "reload") return;
  cp.outcome = outcome;
  cp.rule = policy::rule_name(*policy_, d.rule);
  if (outcome == policy::Outcome::Deny) {
    ++counters_.calls_cut;
    unoffload(call.id);
  }
  audit(scope, outcome, cp.rule, cp.charge, s.name ? printable_name(*s.name) : std::string(), reason,
        fmt::format("{} {}", describe(c), call_ids(call)));
}

void Gateway::maybe_offload(const track::ControlConnection& c, const track::Call& call) {
  if (!options_.fast_path || offloaded_.count(call.id) != 0) return;
  if (call.state != track::CallState::Established || !call.pns_call_id || !call.pac_call_id) return;
  if (policy_) {
    const auto cp = call_policy_.find(call.id);
    if (cp == call_policy_.end() || cp->second.outcome != policy::Outcome::Allow) return;
  }
  // The first packets (LCP, authentication) stay here, so the PPP name is read.
  if (!call.user && call.gre[0].packets + call.gre[1].packets < track::kAuthScanPackets) return;
  const nat::CallMapping* m = translator_.find_inside(c.id, *call.pns_call_id);
  if (m == nullptr) return;
  const OffloadedCall o{m->server, m->outside, m->inside, m->outside_call_id, m->inside_call_id, *call.pac_call_id};
  offloaded_[call.id] = Offload{o, c.pns, c.pac, *call.pns_call_id, 0, 0};
  offload_changes_.push_back(OffloadChange{true, o});
  ++counters_.calls_offloaded;
  log_->info("call_offloaded {} {} outside_call_id={} note=\"its GRE is forwarded by the kernel\"", describe(c),
             call_ids(call), m->outside_call_id);
}

void Gateway::unoffload(std::uint64_t call_id) {
  const auto it = offloaded_.find(call_id);
  if (it == offloaded_.end()) return;
  offload_changes_.push_back(OffloadChange{false, it->second.call});
  offloaded_.erase(it);
}

std::vector<OffloadChange> Gateway::take_offload_changes() {
  std::vector<OffloadChange> out;
  out.swap(offload_changes_);
  return out;
}

std::vector<OffloadedCall> Gateway::offloaded_calls() const {
  std::vector<OffloadedCall> out;
  out.reserve(offloaded_.size() + adopted_.size());
  for (const auto& [id, o] : offloaded_) out.push_back(o.call);
  for (const Adopted& a : adopted_) out.push_back(a.call);
  return out;
}

std::size_t Gateway::adopt_offloaded(const std::vector<OffloadCount>& counts, double now) {
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t>, std::size_t> seen;  // by inbound key
  std::size_t adopted = 0;
  for (const OffloadCount& n : counts) {
    if (!n.binding) continue;
    const OffloadedCall& c = *n.binding;
    const auto key = std::tuple{c.server.value, c.outside.value, c.outside_call_id};
    auto it = seen.find(key);
    if (it == seen.end()) {
      const std::uint64_t connection = kAdoptedConnectionBase + adopted_total_;
      if (!translator_.adopt(connection, c.inside, c.outside, c.server, c.inside_call_id, c.outside_call_id)) {
        log_anomaly("fast_path_adopt_conflict",
                    fmt::format("server={} outside={} outside_call_id={} note=\"left to expire\"", to_string(c.server),
                                to_string(c.outside), c.outside_call_id),
                    now);
        continue;
      }
      ++adopted_total_;
      ++adopted;
      adopted_.push_back(Adopted{c, connection, now, 0, 0});
      it = seen.emplace(key, adopted_.size() - 1).first;
      log_->info("call_adopted server={} outside={} outside_call_id={} inside={} inside_call_id={} "
                 "server_call_id={} note=\"offloaded by the previous run; kept while its GRE flows\"",
                 to_string(c.server), to_string(c.outside), c.outside_call_id, to_string(c.inside), c.inside_call_id,
                 c.server_call_id);
    }
    Adopted& a = adopted_[it->second];
    (n.to_client ? a.to_client_seen : a.to_server_seen) = n.packets;  // counts from here on
  }
  return adopted;
}

void Gateway::expire_adopted(double now) {
  std::erase_if(adopted_, [&](const Adopted& a) {
    if (now - a.last_activity <= options_.timeouts.call_idle) return false;
    offload_changes_.push_back(OffloadChange{false, a.call});
    translator_.release(a.connection_id, a.call.inside_call_id);
    log_->info("adopted_call_ended server={} outside_call_id={} inside={} reason=\"idle timeout\"",
               to_string(a.call.server), a.call.outside_call_id, to_string(a.call.inside));
    return true;
  });
}

void Gateway::note_offload_counts(const std::vector<OffloadCount>& counts, double now) {
  // One index of the kernel's element keys (direction, two addresses, Key) to the call they
  // count, offloaded here or adopted from the previous run.
  struct Target {
    Offload* offload = nullptr;
    Adopted* adopted = nullptr;
  };
  const auto key = [](bool to_client, wire::Ipv4Address a, wire::Ipv4Address b, std::uint16_t k) {
    return std::pair{(std::uint64_t{a.value} << 32) | b.value, (std::uint32_t{k} << 1) | (to_client ? 1u : 0u)};
  };
  const auto in_key = [&](const OffloadedCall& c) { return key(true, c.server, c.outside, c.outside_call_id); };
  const auto out_key = [&](const OffloadedCall& c) { return key(false, c.inside, c.server, c.server_call_id); };
  struct Hash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint32_t>& k) const {
      return std::hash<std::uint64_t>{}(k.first * 0x9e3779b97f4a7c15ULL ^ k.second);
    }
  };
  std::unordered_map<std::pair<std::uint64_t, std::uint32_t>, Target, Hash> index;
  index.reserve(2 * (offloaded_.size() + adopted_.size()));
  for (auto& [id, o] : offloaded_) index[in_key(o.call)].offload = index[out_key(o.call)].offload = &o;
  for (Adopted& a : adopted_) index[in_key(a.call)].adopted = index[out_key(a.call)].adopted = &a;
  for (const OffloadCount& n : counts) {
    const auto it = index.find(n.to_client ? in_key(n.key) : out_key(n.key));
    if (it == index.end()) continue;
    if (Adopted* a = it->second.adopted) {
      std::uint64_t& seen = n.to_client ? a->to_client_seen : a->to_server_seen;
      if (n.packets != seen) a->last_activity = now;
      seen = n.packets;
    }
    if (Offload* o = it->second.offload) {
      std::uint64_t& seen = n.to_client ? o->to_client_seen : o->to_server_seen;
      // An element re-added after it expired starts counting from zero again.
      const std::uint64_t packets = n.packets >= seen ? n.packets - seen : n.packets;
      seen = n.packets;
      if (packets == 0) continue;
      (n.to_client ? counters_.gre_offloaded_to_pns : counters_.gre_offloaded_to_pac) += packets;
      tracker_.note_offloaded_gre(o->pns, o->pac, o->pns_call_id,
                                  n.to_client ? Direction::PacToPns : Direction::PnsToPac, packets, 0, now);
    }
  }
}

void Gateway::disable_fast_path(std::string_view reason) {
  if (!options_.fast_path) return;
  options_.fast_path = false;
  log_->warn("fast_path_disabled reason=\"{}\" note=\"GRE goes through the queue\"", reason);
  offloaded_.clear();
  offload_changes_.clear();
}

void Gateway::set_policy(std::shared_ptr<const policy::Policy> p) {
  const bool reload = policy_ != nullptr;
  policy_ = std::move(p);
  if (!policy_) {
    call_policy_.clear();
    return;
  }
  if (!reload || policy_->on_reload != policy::OnReload::Rejudge) return;
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    for (const auto& call : c.calls) {
      if (auto it = call_policy_.find(call->id); it != call_policy_.end()) judge_again(c, *call, it->second, "reload");
    }
  });
}

void Gateway::allocate(const track::ControlConnection& c, const track::Call& call, const PendingAllocation& p) {
  ConnectionNat& n = nat_of(c);
  const double now = current_ != nullptr ? current_->time : 0;
  if (policy_ && !admit_call(c, call, p)) return;
  if (!n.outside_known && resolver_ != nullptr) {
    if (const auto a = resolver_->outside_address(c.pns, c.pac)) {
      n.outside = *a;
      n.outside_known = true;
    } else {
      log_anomaly("nat_binding_unknown",
                  fmt::format("{} note=\"no conntrack entry; using the client's own address\"", describe(c)), now);
    }
  }
  auto r = translator_.map_call(c.id, c.pns.address, n.outside, c.pac.address, p.inside_call_id);
  if (!r) {
    if (const auto it = call_policy_.find(call.id); it != call_policy_.end()) {
      admission_.release_call(it->second.charge);
      call_policy_.erase(it);
    }
    if (r.error() == nat::NatError::Exhausted) {
      ++counters_.calls_refused;
      refuse_call(n, p.sequence);
      log_anomaly(nat::name_of(r.error()),
                  fmt::format("call refused: no Call ID left toward {} from {} {} pns_call_id={}",
                              to_string(c.pac.address), to_string(n.outside), describe(c), p.inside_call_id),
                  now);
    }
    return;
  }
  const nat::CallMapping* m = *r;
  if (m->translated()) {
    log_->info("call_id_translated {} pns_call_id={} outside_call_id={} outside={}", describe(c),
               p.inside_call_id, m->outside_call_id, to_string(n.outside));
    n.patches[index_of(p.direction)].add(p.sequence, m->outside_call_id);
  }
}

void Gateway::on_call_changed(const track::ControlConnection& c, const track::Call& call) {
  // The call the message being read has just opened (OCRQ) or answered (ICRP).
  if (pending_allocation_ && pending_allocation_->connection_id == c.id && call.pns_call_id == pending_allocation_->inside_call_id &&
      (call.state == track::CallState::WaitReply || call.state == track::CallState::WaitConnect)) {
    const PendingAllocation p = *pending_allocation_;
    pending_allocation_.reset();
    allocate(c, call, p);
  }
  // One line per event of a call: established, user name seen, authentication verdict.
  std::uint8_t& logged = call_log_state_[call.id];
  if (call.state == track::CallState::Established && (logged & kLoggedEstablished) == 0) {
    logged |= kLoggedEstablished;
    const nat::CallMapping* m = call.pns_call_id ? translator_.find_inside(c.id, *call.pns_call_id) : nullptr;
    log_->info("call_established {} {} outside_call_id={} origin={}", describe(c), call_ids(call),
               m != nullptr ? std::to_string(m->outside_call_id) : std::string("-"),
               track::name_of(call.origin));
  }
  if (call.user && (logged & kLoggedUser) == 0) {
    logged |= kLoggedUser;
    log_->info("call_user {} {} user=\"{}\" method={}", describe(c), call_ids(call), printable_name(call.user->name),
               wire::name_of(call.user->method));
    // The PPP authentication name is who the call is: judge it again by name.
    if (const auto it = call_policy_.find(call.id); it != call_policy_.end()) {
      judge_again(c, call, it->second, "call_user");
    }
  }
  maybe_offload(c, call);
  if (call.auth_succeeded && (logged & kLoggedVerdict) == 0) {
    logged |= kLoggedVerdict;
    log_->info("call_auth {} {} success={}", describe(c), call_ids(call), *call.auth_succeeded);
  }
}

void Gateway::on_call_closed(const track::ControlConnection& c, const track::Call& call) {
  log_->info("call_closed {} {} reason=\"{}\" gre_to_pac={} gre_to_pns={}", describe(c), call_ids(call),
             call.close_reason, call.gre[0].packets, call.gre[1].packets);
  if (call.pns_call_id) translator_.release(c.id, *call.pns_call_id);
  call_log_state_.erase(call.id);
  unoffload(call.id);
  if (const auto it = call_policy_.find(call.id); it != call_policy_.end()) {
    admission_.release_call(it->second.charge);
    call_policy_.erase(it);
  }
}

void Gateway::on_connection_closed(const track::ControlConnection& c) {
  log_->info("connection_closed {} reason=\"{}\"", describe(c), c.close_reason);
  translator_.release_connection(c.id);
  if (auto it = nat_.find(c.id); it != nat_.end()) {
    it->second.closed_at = current_ != nullptr ? current_->time : 0;
    if (it->second.charge) admission_.release_connection(*it->second.charge);
    it->second.charge.reset();
  }
}

void Gateway::release_held(ConnectionNat& n, std::size_t direction, bool expired) {
  for (auto& h : n.held[direction]) {
    ReleasedPacket r{h.packet_id, Action::Accept, false, std::move(h.bytes)};
    r.modified = nat::patch_tcp_payload(r.bytes, n.patches[direction]);
    if (r.modified) ++counters_.control_rewritten;
    if (expired) ++counters_.hold_expired;
    released_.push_back(std::move(r));
  }
  n.held[direction].clear();
}

std::vector<ReleasedPacket> Gateway::take_released() {
  std::vector<ReleasedPacket> out;
  out.swap(released_);
  return out;
}

void Gateway::expire(double now) {
  PacketMeta meta{now, 0, std::nullopt};
  current_ = &meta;
  tracker_.expire(now);
  current_ = nullptr;
  expire_adopted(now);
  for (auto& [id, n] : nat_) {
    for (std::size_t d = 0; d < 2; ++d) {
      if (!n.held[d].empty() && (n.closed_at || now - n.held[d].front().since > kMaxHoldSeconds)) {
        release_held(n, d, true);
      }
    }
  }
  // Patches outlive their connection for one idle period: late retransmissions need them.
  std::erase_if(nat_, [&](const auto& kv) {
    return kv.second.closed_at && now - *kv.second.closed_at > options_.timeouts.connection_idle;
  });
}

void Gateway::shutdown(double now) {
  PacketMeta meta{now, 0, std::nullopt};
  current_ = &meta;
  tracker_.close_all(now, "daemon stopped");
  current_ = nullptr;
  for (auto& [id, n] : nat_) {
    for (std::size_t d = 0; d < 2; ++d) release_held(n, d, false);
  }
}

nlohmann::json Gateway::status() const {
  using nlohmann::json;
  json connections = json::array();
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    if (c.state == track::ConnectionState::Closed) return;
    const auto n = nat_.find(c.id);
    json calls = json::array();
    for (const auto& call : c.calls) {
      const nat::CallMapping* m =
          call->pns_call_id ? translator_.find_inside(c.id, *call->pns_call_id) : nullptr;
      json j{{"id", call->id},
             {"origin", track::name_of(call->origin)},
             {"state", track::name_of(call->state)},
             {"pns_call_id", call->pns_call_id ? json(*call->pns_call_id) : json(nullptr)},
             {"outside_call_id", m != nullptr ? json(m->outside_call_id) : json(nullptr)},
             {"pac_call_id", call->pac_call_id ? json(*call->pac_call_id) : json(nullptr)},
             {"gre_to_pac", gre_json(call->gre[0])},
             {"gre_to_pns", gre_json(call->gre[1])},
             {"user", call->user ? json(printable_name(call->user->name)) : json(nullptr)}};
      j["fast_path"] = offloaded_.count(call->id) != 0;
      if (const auto cp = call_policy_.find(call->id); cp != call_policy_.end()) {
        j["policy"] = {{"verdict", policy::name_of(cp->second.outcome)},
                       {"rule", cp->second.rule},
                       {"user", cp->second.charge.user.empty() ? json(nullptr) : json(cp->second.charge.user)}};
      }
      calls.push_back(std::move(j));
    }
    connections.push_back(json{{"id", c.id},
                               {"pns", to_string(c.pns)},
                               {"pac", to_string(c.pac)},
                               {"outside", n != nat_.end() ? to_string(n->second.outside) : std::string()},
                               {"state", track::name_of(c.state)},
                               {"calls", std::move(calls)}});
  });
  json anomalies = json::object();
  for (const auto& info : track::kAnomalyTable) {
    const std::uint64_t v = tracker_.counters()[static_cast<std::size_t>(info.anomaly)];
    if (v != 0) anomalies[std::string(info.name)] = v;
  }
  const GatewayCounters& g = counters_;
  const nat::NatCounters& t = translator_.counters();
  return json{{"connections", std::move(connections)},
              {"calls", tracker_.call_count()},
              {"nat", {{"mapped", translator_.size()},
                       {"calls_mapped", t.calls_mapped},
                       {"calls_translated", t.calls_translated},
                       {"exhausted", t.exhausted}}},
              {"packets", {{"control_segments", g.control_segments},
                           {"control_rewritten", g.control_rewritten},
                           {"control_dropped", g.control_dropped},
                           {"control_held", g.control_held},
                           {"control_refused", g.control_refused},
                           {"hold_expired", g.hold_expired},
                           {"gre_to_pns", g.gre_to_pns},
                           {"gre_to_pac", g.gre_to_pac},
                           {"gre_rewritten", g.gre_rewritten},
                           {"gre_unknown_dropped", g.gre_unknown_dropped},
                           {"gre_unknown_passed", g.gre_unknown_passed},
                           {"gre_not_pptp_passed", g.gre_not_pptp_passed},
                           {"malformed_dropped", g.malformed_dropped},
                           {"other_passed", g.other_passed},
                           {"calls_refused", g.calls_refused}}},
              {"fast_path", {{"enabled", options_.fast_path},
                             {"calls", offloaded_.size()},
                             {"adopted", adopted_.size()},
                             {"calls_offloaded", g.calls_offloaded},
                             {"gre_to_pns", g.gre_offloaded_to_pns},
                             {"gre_to_pac", g.gre_offloaded_to_pac}}},
              {"policy", policy_ ? json{{"file", policy_->origin},
                                        {"rules", policy_->rules.size()},
                                        {"users", policy_->users.size()},
                                        {"connections_denied", g.connections_denied},
                                        {"control_dropped", g.control_policy_dropped},
                                        {"calls_denied", g.calls_denied},
                                        {"calls_cut", g.calls_cut},
                                        {"gre_dropped", g.gre_policy_dropped}}
                                 : json(nullptr)},
              {"anomalies", std::move(anomalies)}};
}

}  // namespace pptp::daemon
