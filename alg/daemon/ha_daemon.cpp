// High availability in the daemon (docs/ha.md): the sync node opened at start, fed by the
// gateway's call lifecycle, ticked with the loop; promote and demote from the control
// socket (keepalived's notify scripts call `pptp-alg ctl promote|demote`).
#include <chrono>
#include <cmath>

#include "alg/control/protocol.hpp"
#include "alg/daemon/daemon_loop.hpp"
#include "alg/daemon/ha_node.hpp"
#include "alg/daemon/local_address.hpp"

namespace pptp::daemon {

int Daemon::open_ha() {
  HaOptions o = options_.ha;
  if (!o.enabled()) {
    if (o.virtual_address.empty()) return 0;
    log_->error("ha_open_failed error=\"ha-virtual-address without ha-peer\" note=\"give the pair's sync "
                "addresses (ha-peer, ha-listen), or drop ha-virtual-address\"");
    return 2;
  }
  if (!options_.control_socket.empty()) o.state_file = options_.control_socket + ".ha-calls";
  auto opened = HaNode::open(o, io_, log_, [this] { return now(); });
  if (!opened) {
    log_->error("ha_open_failed error=\"{}\"", opened.error());
    return 1;
  }
  if (!o.virtual_address.empty()) {
    wire::Ipv4Address a;
    if (!wire::parse_ipv4_address(o.virtual_address, a)) {
      log_->error("ha_open_failed error=\"ha-virtual-address '{}' is not an IPv4 address\" note=\"give the outside "
                  "virtual address keepalived moves\"", o.virtual_address);
      return 2;
    }
    // The node's own address would promote every restarted daemon, the backup's too.
    if (const auto listen = parse_ipv4_endpoint(o.listen); listen && listen->address == a) {
      log_->error("ha_open_failed error=\"ha-virtual-address {} is this node's sync address\" note=\"give the "
                  "outside virtual address keepalived moves, never a node's own\"", o.virtual_address);
      return 2;
    }
    ha_virtual_address_ = a;
  }
  ha_ = std::move(*opened);
  if (auto c = nft::ConntrackLookup::open(); c) {
    ha_conntrack_ = std::move(*c);
  } else {
    log_->warn("ha_conntrack_unavailable error=\"{}\" note=\"the entries of connections let go of stay\"",
               c.error());
  }
  ha_->set_healing_handler([this] { on_ha_healing(); });
  ha_->set_retake_handler([this] { ha_retake_after_commit(); });
  gateway_->set_node_half(o.node);
  gateway_->set_call_observer(ha_.get());
  // Calls adopted from the kernel's elements at this start (a restart of the active
  // daemon): the peer dropped their records at our new run; they go out again.
  ha_->republish_adopted(gateway_->offloaded_calls());
  log_->info("ha_listening listen={} peer={} node={} role=standby", o.listen, o.peer, o.node);
  return 0;
}

void Daemon::ha_tick() {
  if (!ha_) return;
  ha_release_stale();
  // Promoted without the peer's snapshot: now whole, its calls are taken (after the commit).
  // Mostly found at the read that completes it (set_retake_handler); here once a commit
  // that held it back has ended.
  if (ha_->retake_due()) ha_retake_after_commit();
  // The peer's records that came after a healing (its backlog or snapshot still on the way).
  if (ha_->healing_late_due([this] { return gateway_->offloaded_calls(); })) on_ha_healing();
  if (ha_->republishing()) ha_->retire_ended(gateway_->offloaded_calls(), options_.gateway.timeouts.call_idle);
  ha_check_virtual_address_gone();
  ha_->tick();
}

void Daemon::ha_check_virtual_address_gone() {
  if (!ha_virtual_address_ || !ha_address_watch_.due(now())) return;
  const auto here = local_addresses();
  if (!ha_address_watch_.looked(now(), here && holds_address(*here, *ha_virtual_address_))) return;
  // The neighbours still send to this node, whose daemon no longer follows new calls; and if
  // keepalived is BACKUP here, the address is not one it moves: a restart promotes us.
  ha_->note_standby_holds_virtual_address();
  log_->error("ha_standby_holds_virtual_address virtual_address={} seconds={:.0f} note=\"keepalived removes its "
              "virtual addresses on leaving MASTER: if it is MASTER here, promote this daemon (pptp-alg ctl "
              "promote); else give ha-virtual-address the outside address of keepalived's virtual_ipaddress, "
              "never a node's own\"",
              wire::to_string(*ha_virtual_address_), VirtualAddressWatch::said_after());
}

void Daemon::ha_promote_at_start() {
  // A restarted daemon on the node that holds the pair's virtual address: keepalived is
  // master here and runs no notify for a daemon's restart (docs/ha.md, "A restarted active
  // daemon: promoting it again"). Before the loop reads any packet or control request: no
  // connection is seen as standby, and a demote that keepalived sends once the address is
  // gone is answered after this (a demote sent before found no socket, and the address gone).
  if (!ha_ || !ha_virtual_address_) return;
  const auto here = local_addresses();
  if (!here) {
    log_->warn("ha_start_standby virtual_address={} error=\"{}\" note=\"keepalived's notify promotes\"",
               wire::to_string(*ha_virtual_address_), here.error());
    return;
  }
  if (!holds_address(*here, *ha_virtual_address_)) {
    log_->info("ha_start_standby virtual_address={} held=false", wire::to_string(*ha_virtual_address_));
    return;
  }
  // Forced: the peer's snapshot is not here yet (nothing is read before the loop runs); its
  // calls are taken once it is (retake_due), after the commit command.
  const auto done = ha_promote(true, "start");
  if (!done) {
    log_->warn("ha_start_promote_failed error=\"{}\"", done.error());
    return;
  }
  log_->warn("ha_promoted_at_start virtual_address={} calls={} adopted={}", wire::to_string(*ha_virtual_address_),
             done->first, done->second);
}

Result<std::pair<std::size_t, std::size_t>, std::string> Daemon::ha_promote(bool force, std::string_view at) {
  auto calls = ha_->promote(force, ha_alive(), ha_let_go_at(at));
  if (!calls) return unexpected(calls.error());
  ha_address_watch_.promoted();
  return std::pair{calls->size(), ha_install(*calls)};
}

Result<std::pair<std::size_t, std::size_t>, std::string> Daemon::ha_retake() {
  const auto in_use = [this](const nat::CallBinding& b) {
    return gateway_->translator().outside_in_use(b.outside, b.server, b.outside_call_id);
  };
  auto calls = ha_->retake(ha_alive(), gateway_->offloaded_calls(), in_use, ha_let_go_at("retake", true));
  if (!calls) return unexpected(calls.error());
  return std::pair{calls->size(), ha_install(*calls)};
}

void Daemon::ha_retake_after_commit() {
  const auto retake = [this] {
    auto done = ha_retake();
    if (!done) {
      log_->warn("ha_retake_refused error=\"{}\"", done.error());
      return;
    }
    log_->warn("ha_retake_installed calls={} adopted={}", done->first, done->second);
  };
  // Nothing of the peer's to take (the usual restart): no commit, only the epoch.
  if (ha_->retake_candidates(gateway_->offloaded_calls()) == 0) {
    retake();
    return;
  }
  ha_commit_then(retake, true);
}

void Daemon::ha_commit_then(std::function<void()> then, bool for_retake) {
  // --ha-commit-command beside the loop, killed after --ha-commit-timeout; `then` on the loop.
  const auto limit = std::chrono::milliseconds(std::llround(options_.ha.commit_timeout * 1000));
  ha_->commit_then(options_.ha.commit_command, limit, std::move(then), for_retake);
}

void Daemon::ha_release_stale() {
  // The peer took over calls this node set up (at a split brain's healing, or a failover
  // away from us) and publishes them: our tracker's state of their control connection, its
  // calls' Call IDs and elements, and our kernel's conntrack entry of it are as they were
  // when we gave up. Kept, they are in the way at our next promotion: the entry's TCP window
  // makes the segments INVALID (conntrackd's commit does not replace an existing entry) and
  // the tracker's calls hold the outside Call IDs the takeover needs. Let go of them now,
  // sending nothing: the tracker's state goes, the entry stays (its NAT binding is the
  // connection's, and a promotion takes over only calls whose connection has an entry) but
  // liberal, no longer judged by its stale window. Once a second: few or none.
  if (ha_->role() != HaRole::Standby) return;
  std::vector<ControlEnds> stale;
  gateway_->tracker().for_each_connection([&](const track::ControlConnection& c) {
    if (c.state != track::ConnectionState::Closed && ha_->peer_carries(c.pns, c.pac)) {
      stale.emplace_back(c.pns, c.pac);
    }
  });
  ha_let_go(stale, "tick");
}

void Daemon::ha_let_go(const std::vector<ControlEnds>& connections, std::string_view at) {
  // Only what our tracker holds live: the rest has nothing of ours in the way.
  std::size_t released = 0;
  for (const auto& [pns, pac] : connections) {
    const std::optional<std::size_t> calls = gateway_->release_connection(pns, pac, now());
    if (!calls) continue;
    ++released;
    const bool liberal = ha_conntrack_ && ha_conntrack_->make_tcp_liberal(pns, pac);
    ha_->note_released(*calls, liberal);
    log_->warn("ha_released_to_peer client={} server={} calls={} conntrack_liberal={} at={}", wire::to_string(pns),
               wire::to_string(pac), *calls, liberal, at);
  }
  // Their elements go now, before a takeover installs the replicated calls' (the same
  // elements, for our own calls the peer carried: removed after, they would be gone).
  if (released > 0) apply_offload();
}

CallsCopy Daemon::calls_copy() const {
  CallsCopy copy{call_rows(), adopted_json(), std::nullopt, std::nullopt};
  if (ha_) {
    copy.replicated = ha_->replicated_records();
    copy.taken_over = ha_->taken_over_records();
  }
  return copy;
}

nlohmann::json calls_answer(const CallsCopy& copy) {
  nlohmann::json answer{{"calls", calls_json(copy.rows)}, {"adopted", copy.adopted}};
  if (copy.replicated) answer["replicated"] = records_json(*copy.replicated);
  if (copy.taken_over) answer["taken_over"] = records_json(*copy.taken_over);
  return answer;
}

void Daemon::ha_status(nlohmann::json& status) const {
  if (!ha_) return;
  status["ha"] = ha_->status_json();  // the calls themselves: `ctl calls`
}

void Daemon::on_ha_request(bool promote, bool force, Reply reply) {
  if (!ha_) {
    reply(control::error_answer("high availability is off (no ha-peer)") + "\n", false);
    return;
  }
  if (!promote) {
    reply(control::ok_answer({{"message", "standby"}, {"calls", ha_demote()}}) + "\n", false);
    return;
  }
  // Active already: keepalived's master notify after our own promotion (at our start, or
  // before its conntrackd commit): the peer's calls nothing here carries yet, their
  // connections now committed. Refused in a split brain (the healing takes them).
  const bool again = ha_->role() == HaRole::Active;
  const auto done = again ? ha_retake() : ha_promote(force, "promotion");
  if (!done) {
    reply(control::error_answer(done.error()) + "\n", false);
    return;
  }
  nlohmann::json answer{{"message", "active"}, {"calls", done->first}, {"adopted", done->second}};
  if (again) answer["again"] = true;
  reply(control::ok_answer(answer) + "\n", false);
}

std::size_t Daemon::ha_demote() {
  const std::vector<nat::CallBinding> gone = ha_->demote();
  ha_address_watch_.demoted(now());
  if (fast_path_ && !gone.empty()) {
    if (auto r = fast_path_->remove(gone); !r) log_->warn("ha_demote_remove_failed error=\"{}\"", r.error());
    // A re-arm in flight on the worker may put these back: removed again when it is done.
    if (refresh_busy_) removed_while_refreshing_.insert(removed_while_refreshing_.end(), gone.begin(), gone.end());
  }
  // Out of the adopted calls too: kept, they would be re-armed (their elements back on a
  // standby) and the next promotion's adoption of the same calls would conflict. Their
  // records stay published, handed over (HaNode::demote): the peer takes them over.
  const std::size_t forgotten = gateway_->forget_adopted(gone, "demoted");
  if (!gone.empty()) log_->info("ha_demote_forgot adopted={} of={}", forgotten, gone.size());
  return gone.size();
}

ConnectionAlive Daemon::ha_alive() {
  // After conntrackd's commit (the notify script's order, or the commit command at a
  // healing), a control connection that is still there has a kernel entry; without
  // ctnetlink nothing can be told, all are kept.
  return [this](const sync::CallKey& k) {
    return !resolver_.lookup || resolver_.outside_address(k.pns, k.pac).has_value();
  };
}

LetGo Daemon::ha_let_go_at(std::string_view at, bool keep_own_calls) {
  // `at` names the occasion in the log: a literal, alive as long as the program.
  if (!keep_own_calls) return [this, at](const std::vector<ControlEnds>& ends) { ha_let_go(ends, at); };
  // A retake while active: our tracker's state of a connection that carries calls of its
  // own (set up here since our promotion) is live, not stale; let go of, those calls would
  // end. Kept: the connection's taken-over calls are found by their Call IDs anyway.
  return [this, at](std::vector<ControlEnds> ends) {
    std::erase_if(ends, [&](const ControlEnds& e) {
      const track::ControlConnection* c = gateway_->tracker().find_connection(e.first, e.second);
      return c != nullptr && !c->calls.empty();
    });
    ha_let_go(ends, at);
  };
}

std::size_t Daemon::ha_install(const std::vector<nat::CallBinding>& calls) {
  // One batch for both directions of every call; their outside Call IDs are reserved by
  // adopting them as a restart adopts the kernel's elements.
  if (fast_path_ && !calls.empty()) {
    if (auto r = fast_path_->add(calls); !r) log_->warn("ha_install_add_failed error=\"{}\"", r.error());
  }
  return gateway_->adopt_offloaded(adoption_counts(calls), now());
}

void Daemon::on_ha_healing() {
  // The control connections' snat must exist before any element (docs/ha.md): the commit
  // command runs beside the loop, the adoption on the loop after it; a failure is counted
  // and the takeover goes on (the calls whose connection has no entry are left).
  ha_commit_then([this] {
    const std::vector<nat::CallBinding> calls =
        ha_->take_over_at_healing(ha_alive(), gateway_->offloaded_calls(), ha_let_go_at("healing"));
    const std::size_t adopted = ha_install(calls);
    log_->warn("ha_healing_installed calls={} adopted={}", calls.size(), adopted);
  }, false);
}

}  // namespace pptp::daemon
