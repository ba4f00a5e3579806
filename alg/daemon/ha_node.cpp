// High availability on the daemon's side (ha_node.hpp; docs/ha.md).
#include "alg/daemon/ha_node.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

#include "alg/daemon/control_server.hpp"
#include "gateway/describe.hpp"

namespace pptp::daemon {

namespace {

std::uint64_t incarnation_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::uint64_t wall_ms_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

sync::PolicyVerdict verdict_of(const gateway::CallRecord& r) {
  if (!r.policy) return sync::PolicyVerdict::NoPolicy;
  switch (r.policy->outcome) {
    case policy::Outcome::Allow: return sync::PolicyVerdict::Allow;
    case policy::Outcome::Deny: return sync::PolicyVerdict::Deny;
    case policy::Outcome::Pending: return sync::PolicyVerdict::Pending;
  }
  return sync::PolicyVerdict::Pending;
}

sync::CallKey key_of(const track::ControlConnection& c, std::uint16_t pns_call_id) {
  return sync::CallKey{c.pns, c.pac, pns_call_id};
}

}  // namespace

std::optional<sync::CallState> call_state(const track::ControlConnection& c, const track::Call& call,
                                          const gateway::CallRecord& r, const nat::CallMapping* m,
                                          std::uint64_t wall_ms) {
  if (m == nullptr || !call.pns_call_id || !call.pac_call_id) return std::nullopt;
  sync::CallState s;
  s.key = key_of(c, *call.pns_call_id);
  s.outside = m->outside;
  s.pac_call_id = *call.pac_call_id;
  s.outside_call_id = m->outside_call_id;
  s.verdict = verdict_of(r);
  if (call.user) s.user = call.user->name.substr(0, sync::kMaxUserLength);
  const double age = call.last_activity - call.opened_at;
  s.updated_ms = wall_ms;
  s.started_ms = wall_ms - static_cast<std::uint64_t>(age > 0 ? age * 1000 : 0);
  // Where a promoted node resumes reading: each direction's next byte, if it is at a
  // message boundary (nothing partial, no gap) of a stream still in sync.
  s.positions_known = true;
  for (std::size_t d = 0; d < 2; ++d) {
    const stream::Reassembler& st = c.streams[d];
    if (st.state() != stream::StreamState::Synced || !st.partial().empty() || st.has_gap()) s.positions_known = false;
    s.next_sequence[d] = st.next_sequence();
  }
  if (!s.positions_known) s.next_sequence = {};
  return s;
}

nat::CallBinding binding_of(const sync::CallState& s) {
  nat::CallBinding b;
  b.server = s.key.pac.address;
  b.outside = s.outside;
  b.inside = s.key.pns.address;
  b.outside_call_id = s.outside_call_id;
  b.inside_call_id = s.key.pns_call_id;
  b.server_call_id = s.pac_call_id;
  return b;
}

std::vector<gateway::OffloadCount> adoption_counts(const std::vector<nat::CallBinding>& calls) {
  std::vector<gateway::OffloadCount> counts;
  counts.reserve(calls.size());
  for (const nat::CallBinding& b : calls) counts.push_back(gateway::OffloadCount{true, b, 0, 0, b});
  return counts;
}

HaNode::HaNode(sync::ChannelEnd channel, sync::UdpLink link, boost::asio::io_context& io,
               std::shared_ptr<spdlog::logger> log, Clock clock)
    : channel_(std::move(channel)),
      link_(std::move(link)),
      socket_(io, link_.fd()),
      log_(std::move(log)),
      clock_(std::move(clock)),
      commit_(io) {}

Result<std::unique_ptr<HaNode>, std::string> HaNode::open(const HaOptions& o, boost::asio::io_context& io,
                                                         std::shared_ptr<spdlog::logger> log, Clock clock) {
  auto peer = parse_ipv4_endpoint(o.peer);
  if (!peer) return unexpected("ha-peer: " + peer.error());
  auto listen = parse_ipv4_endpoint(o.listen);
  if (!listen) return unexpected("ha-listen: " + listen.error());
  if (auto bad = sync_endpoints_error(*listen, *peer)) return unexpected(std::move(*bad));
  auto key = read_key_file(o.key_file);
  if (!key) return unexpected("ha-key-file: " + key.error());
  auto link = sync::UdpLink::open(*listen, *peer);
  if (!link) return unexpected("ha-listen " + o.listen + ": " + link.error());
  sync::ChannelOptions co;
  co.node = o.node;
  co.key = std::move(*key);
  std::unique_ptr<HaNode> node(
      new HaNode(sync::ChannelEnd(std::move(co), incarnation_now()), std::move(*link), io, std::move(log), std::move(clock)));
  node->state_file_ = o.state_file;
  node->wait_readable();
  node->tick();
  return node;
}

void HaNode::wait_readable() {
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled at shutdown
    const bool was_synced = channel_.synced();
    link_.receive([&](Bytes d) { channel_.receive(d, clock_()); });
    if (!was_synced && channel_.synced()) {
      log_->info("ha_synced calls={} peer_epoch={}", channel_.replica().size(), channel_.peer_epoch());
    }
    if (healing_.observe(role_ == HaRole::Active, channel_.peer_active(), channel_.peer_epoch(),
                         channel_.counters().hellos)) {
      ++healings_;
      healing_late_.open(clock_());
      log_->warn("ha_split_brain_healed epoch={} peer_epoch={} replicated_calls={}", channel_.epoch(),
                 channel_.peer_epoch(), channel_.replica().size());
      if (on_healing_) on_healing_();
    }
    if (on_retake_ && retake_due()) on_retake_();
    flush();
    wait_readable();
  });
}

void HaNode::tick() {
  channel_.tick(clock_());
  flush();
  save_table();
}

void HaNode::flush() {
  for (const auto& d : channel_.take_outgoing()) {
    if (!link_.send(d)) ++send_failures_;  // the channel sends it again if it mattered
  }
}

void HaNode::call_changed(const track::ControlConnection& c, const track::Call& call, const gateway::CallRecord& r,
                          const nat::CallMapping* m) {
  auto s = call_state(c, call, r, m, wall_ms_now());
  if (!s) return;
  const sync::CallState* known = channel_.published().find(s->key);
  if (known == nullptr) {
    channel_.publish_add(*s);
  } else {
    s->started_ms = known->started_ms;
    channel_.publish_update(*s);
  }
  table_changed_ = true;
  flush();
}

void HaNode::call_ended(const track::ControlConnection& c, const track::Call& call) {
  if (!call.pns_call_id) return;
  const sync::CallKey k = key_of(c, *call.pns_call_id);
  // A call of ours that ended while we are active: the peer may still hold a record of it
  // (it carried it in a split brain), which a retake must not bring back.
  if (role_ == HaRole::Active) taken_over_.note_ended(k);
  if (channel_.published().find(k) == nullptr) return;
  channel_.publish_delete(k);
  table_changed_ = true;
  flush();
}

std::vector<sync::CallState> calls_to_take_over(const sync::Replica& replica, const ConnectionAlive& alive) {
  // One call per inbound element (server, outside address, outside Call ID): a clear not
  // replicated before the peer gave that outside Call ID to a new call leaves two records;
  // the older is stale, and one outside Call ID never names two calls.
  std::map<std::tuple<wire::Ipv4Address, wire::Ipv4Address, std::uint16_t>, std::size_t> element_of;
  std::vector<sync::CallState> out;
  for (const auto& [key, s] : replica.calls()) {
    if (s.verdict == sync::PolicyVerdict::Deny || s.verdict == sync::PolicyVerdict::Pending) continue;
    if (alive && !alive(key)) continue;
    const auto [at, first] = element_of.try_emplace({s.key.pac.address, s.outside, s.outside_call_id}, out.size());
    if (first) {
      out.push_back(s);
    } else if (s.updated_ms > out[at->second].updated_ms) {
      out[at->second] = s;
    }
  }
  return out;
}

Result<std::vector<nat::CallBinding>, std::string> HaNode::promote(bool force, const ConnectionAlive& alive,
                                                                   const LetGo& let_go) {
  if (role_ == HaRole::Active) return unexpected(std::string("already active"));
  if (!channel_.synced() && !force) {
    return unexpected(std::string("the replica is not whole (no snapshot from the peer's current run); "
                                  "promote --force takes it as it is"));
  }
  std::vector<sync::CallState> taken = calls_to_take_over(channel_.replica(), alive);
  // Our own state of their connections (kept from before we gave up, if the tick has not
  // let go of it yet) would be in the way: gone before anything is installed.
  if (let_go) let_go(connections_of(taken));
  // A new activity: what this node carried before (adopted at a standby's restart and idled
  // out since) is no reason to leave a call out of this activity's retake.
  taken_over_.new_activity();
  role_ = HaRole::Active;
  channel_.set_active(true);
  channel_.set_epoch(std::max(channel_.epoch(), channel_.peer_epoch()) + 1);
  republished_.publish(channel_, taken);
  table_changed_ = true;
  flush();
  std::vector<nat::CallBinding> out;
  out.reserve(taken.size());
  for (const sync::CallState& s : taken) out.push_back(binding_of(s));
  const std::size_t gone = channel_.replica().size() - taken.size();
  // Beside the calls this run adopted at its start (republish_adopted): after a restart of
  // the active daemon they are ours to carry as the peer's are, already installed.
  taken_over_.add(std::move(taken));
  taken_over_.keep_heads(channel_.replica());
  // Without the peer's whole snapshot (forced, or at a start): its calls come once it is.
  retake_pending_ = !channel_.synced();
  log_->warn("ha_promoted epoch={} calls={} dropped={} restart_adopted={} synced={}", channel_.epoch(), out.size(),
             gone, taken_over_.size() - out.size(), channel_.synced());
  return out;
}

void HaNode::commit_then(const std::string& command, std::chrono::milliseconds limit, std::function<void()> adopt,
                         bool for_retake) {
  if (command.empty() || command == "none") {
    adopt();
    return;
  }
  if (commit_.running()) {
    if (for_retake) {
      retake_pending_ = true;  // at a later tick, once this commit is done
      return;
    }
    heal_again_ = true;
    log_->warn("ha_healing_while_committing note=\"committed and taken over again after the running commit\"");
    return;
  }
  const std::string_view what = for_retake ? "retake" : "healing";
  commit_.start(command_words(command), limit,
                [this, command, what, for_retake, adopt = std::move(adopt)](const CommandResult& r) {
                  if (r.outcome == CommandOutcome::Succeeded) {
                    log_->info("ha_{}_committed seconds={:.3f}", what, r.seconds);
                  } else {
                    ++(for_retake ? retake_commit_failures_ : healing_commit_failures_);
                    if (r.outcome == CommandOutcome::TimedOut && !for_retake) ++healing_commit_timeouts_;
                    log_->warn("ha_{}_commit_failed command=\"{}\" error=\"{}\" seconds={:.3f}", what, command,
                               r.error, r.seconds);
                  }
                  adopt();
                  if (std::exchange(heal_again_, false) && on_healing_) on_healing_();
                });
}

std::optional<gateway::TakenOverIds> HaNode::taken_over_call(const track::ControlConnection& c,
                                                             gateway::CallIdSide by, std::uint16_t id) const {
  if (role_ != HaRole::Active) return std::nullopt;
  return taken_over_.find(c.pns, c.pac, by, id);
}

bool HaNode::holds_taken_over(const track::ControlConnection& c) const {
  return role_ == HaRole::Active && taken_over_.holds(c.pns, c.pac);
}

std::optional<track::ResumePositions> HaNode::resume_positions(const track::ControlConnection& c) const {
  if (role_ != HaRole::Active) return std::nullopt;
  return taken_over_.positions(c.pns, c.pac);
}

std::vector<nat::CallBinding> HaNode::end_taken_over(const track::ControlConnection& c,
                                                     const gateway::TakenOverEnd& e) {
  if (role_ != HaRole::Active) return {};
  std::vector<nat::CallBinding> out;
  for (const sync::CallState& s : taken_over_.end(c.pns, c.pac, e)) {
    log_->info("ha_taken_over_call_ended {} outside_call_id={} pac_call_id={}", sync::to_string(s.key),
               s.outside_call_id, s.pac_call_id);
    out.push_back(binding_of(s));
  }
  return out;
}

std::vector<gateway::TakenOverKill> HaNode::kill_taken_over(const gateway::KillRequest& which) {
  if (role_ != HaRole::Active) return {};
  const auto selected = [&](const sync::CallState& s) {
    return which.selects(std::nullopt, s.user.empty() ? nullptr : &s.user, s.key.pns.address);
  };
  std::vector<gateway::TakenOverKill> out;
  for (const sync::CallState& s : taken_over_.take_out_if(selected)) {
    taken_over_.note_ended(s.key);  // a retake must not bring it back
    out.push_back(gateway::TakenOverKill{s.key.pns, s.key.pac, binding_of(s)});
  }
  return out;
}

std::vector<nat::CallBinding> HaNode::demote() {
  // Every taken-over call is republished (promote, take_over_at_healing), as every call
  // adopted at a restart is (republish_adopted): the carried ones are all of them. The
  // highest epoch either node had: only a promotion (or a healing) after this one bumps the
  // peer's above it.
  std::vector<nat::CallBinding> out =
      republished_.hand_over(std::max(channel_.epoch(), channel_.peer_epoch()), clock_());
  if (role_ == HaRole::Standby && out.empty()) return {};
  // Active and the peer unheard (the sync link cut): a split brain's end the peer, active,
  // cannot see otherwise (it never saw us active, nor a promotion of ours in the split). Our
  // epoch rises, so that its healing (HealingWatch: a rise, then a standby Hello) takes the
  // calls we carried over once the link is back (docs/ha.md, "The node that stayed active
  // gives up"). A plain failover hears the peer: no rise, no healing.
  const bool raise = role_ == HaRole::Active && !channel_.peer_alive(clock_());
  if (raise) channel_.set_epoch(channel_.epoch() + 1);
  role_ = HaRole::Standby;
  channel_.set_active(false);
  log_->warn("ha_demoted epoch={} calls={} taken_over={} handed_over={} peer_unheard={}", channel_.epoch(), out.size(),
             taken_over_.size(), out.size(), raise);
  taken_over_.clear();
  retake_pending_ = false;
  return out;
}

bool peer_carries(const sync::Replica& replica, HaRole role, bool peer_active, const wire::Endpoint& pns,
                  const wire::Endpoint& pac) {
  if (role != HaRole::Standby || !peer_active) return false;
  const auto& calls = replica.calls();
  const auto it = calls.lower_bound(sync::CallKey{pns, pac, 0});
  return it != calls.end() && it->first.pns == pns && it->first.pac == pac;
}

std::vector<ControlEnds> connections_of(const std::vector<sync::CallState>& calls) {
  std::vector<ControlEnds> out;
  for (const sync::CallState& s : calls) {
    const ControlEnds e{s.key.pns, s.key.pac};
    if (std::ranges::find(out, e) == out.end()) out.push_back(e);
  }
  return out;
}

void HaNode::note_released(std::size_t calls, bool conntrack_liberal) {
  ++released_connections_;
  released_calls_ += calls;
  if (!conntrack_liberal) ++released_conntrack_missed_;
}

void HaNode::retire_ended(const std::vector<nat::CallBinding>& offloaded, double hold) {
  // A taken-over call whose elements idled out (no GRE for the call idle timeout; or an end
  // ignored before its connection's window was proven) is over here: kept, its client Call
  // ID would refuse a new call on its connection (duplicate_call_id) until a demotion.
  if (const std::size_t n = taken_over_.retire(offloaded); n > 0) {
    log_->info("ha_taken_over_retired calls={} taken_over={} note=\"no longer offloaded\"", n, taken_over_.size());
  }
  if (const std::size_t n = republished_.retire(channel_, offloaded, clock_(), hold); n > 0) {
    log_->info("ha_retired calls={} note=\"taken-over calls ended here; deleted on the sync link\"", n);
    table_changed_ = true;
    flush();
  }
}

}  // namespace pptp::daemon
