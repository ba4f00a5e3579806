// The tracker's hooks: Call-ID NAT in control messages, a call's admission and mapping, its
// lifecycle lines, and the one place its gateway state ends. Also the housekeeping that the
// daemon's tick drives (expiry, shutdown, reload).
#include "gateway/describe.hpp"
#include "gateway/gateway.hpp"
#include "nat/rewrite.hpp"

namespace pptp::gateway {

using track::Direction;
using wire::to_string;

void Gateway::on_anomaly(const track::AnomalyEvent& e) {
  warnings_.warn(track::name_of(e.anomaly), packet_.time, [&] {
    std::string where = e.connection != nullptr ? fmt::format("{}", describe(*e.connection)) : "connection=-";
    if (e.direction) where += fmt::format(" direction={}", track::name_of(*e.direction));
    return fmt::format("{} detail=\"{}\"", where, e.detail);
  });
}

void Gateway::on_message_bytes(const track::ControlConnection& c, Direction d, std::span<std::uint8_t> message,
                               std::uint32_t sequence) {
  const auto type = static_cast<wire::ControlMessageType>(load_u16(message.data() + 8));
  const wire::MessageSpec* spec = wire::find_spec(static_cast<std::uint16_t>(type));
  if (spec == nullptr) return;
  // What it ends of the calls taken over is read as its sender wrote it, and ended after the
  // field's translation, which needs the call (taken_over.cpp).
  const auto ends = call_observer_ != nullptr ? taken_over_end_named(c, d, type, message) : std::nullopt;
  patch_call_id_field(c, d, type, message, sequence);
  if (ends) end_or_hold_taken_over(c, d, *ends, spec->key, sequence + static_cast<std::uint32_t>(message.size()));
}

void Gateway::patch_call_id_field(const track::ControlConnection& c, Direction d, wire::ControlMessageType type,
                                  std::span<std::uint8_t> message, std::uint32_t sequence) {
  const nat::CallIdField field = nat::call_id_field(type, d == Direction::PnsToPac);
  if (field.rewrite == nat::CallIdRewrite::None || field.offset + 2u > message.size()) return;
  ConnectionRecord& r = record_of(c);
  LazyPatches& patches = r.patches[index_of(d)];
  const std::uint32_t field_sequence = sequence + field.offset;
  std::uint8_t* at = message.data() + field.offset;
  // Its first byte was decided alone (call_id_fields.cpp): the second is decided now.
  if (r.first_byte_field == field_sequence) decide_whole_field(c, r, field, d, field_sequence, load_u16(at));
  // A field decided when it became whole keeps that decision (its bytes may have left).
  std::optional<std::uint16_t> value = patches.view().find(field_sequence);
  if (!value && field.rewrite != nat::CallIdRewrite::Allocate) {
    value = translated_value(c, field, load_u16(at));
    if (value) patches.edit().add(field_sequence, *value);
  }
  // The tracker reads the inside view: the PAC's names for the PNS's calls are translated
  // back (the PNS's own Call IDs are read as the PNS wrote them).
  const bool to_inside = field.rewrite == nat::CallIdRewrite::ToInside ||
                         field.rewrite == nat::CallIdRewrite::DisconnectCallId;
  if (value && to_inside) store_u16(at, *value);
}

track::CallIdVerdict Gateway::on_pns_call_id(const track::ControlConnection& c, const track::Call& call,
                                             std::uint32_t message_sequence) {
  ConnectionRecord& r = record_of(c);
  const auto type = call.origin == track::CallOrigin::Outgoing ? wire::ControlMessageType::OutgoingCallRequest
                                                                : wire::ControlMessageType::IncomingCallReply;
  const std::uint32_t field_sequence = message_sequence + nat::call_id_field(type, true).offset;
  CallRecord& record = calls_[call.id];
  // Refused set-ups end at once: the tracker closes the call and end_call forgets its record.
  if (const auto hit = budgets_.refuse_call(r.budget.source, kCallBytes, lingering_bytes())) {
    note_refusal(*hit, r.budget.source, "call");
    translator_.give_back(c.id, field_sequence);  // the Call ID reserved when the field came
    refuse(r, field_sequence);
    return track::CallIdVerdict::Refuse;
  }
  budgets_.charge_call(r.budget.source);
  record.budget_source = r.budget.source;
  if (gate_.policy()) {
    std::optional<CallPolicy> admitted = gate_.admit_call(c, call, packet_.time);
    if (admitted) record.policy = std::make_unique<CallPolicy>(std::move(*admitted));
    if (!admitted) {
      translator_.give_back(c.id, field_sequence);
      refuse(r, field_sequence);
      return track::CallIdVerdict::Refuse;
    }
  }
  if (!map_call_id(c, call, r, field_sequence)) {
    refuse(r, field_sequence);
    return track::CallIdVerdict::Refuse;  // on_call_closed gives back what admit_call charged
  }
  return track::CallIdVerdict::Accept;
}

bool Gateway::may_place_incoming_call(const track::ControlConnection& c) {
  ConnectionRecord& r = record_of(c);
  const auto hit = budgets_.refuse_call(r.budget.source, kCallBytes, lingering_bytes());
  if (hit) note_refusal(*hit, r.budget.source, "incoming call");
  return !hit;
}

bool Gateway::may_name_pac_call_id(const track::ControlConnection& c, const track::Call& call, std::uint16_t id) {
  ConnectionRecord& r = record_of(c);
  resolve_outside(c, r);
  const PacCallKey key{c.pac.address.value, r.outside.value, id};
  if (const PacCallHolder* h = pac_call_ids_.holder(key)) {
    // The server gave two calls of this connection one Call ID: only this client's GRE is
    // confused. The call shares the holder's entry, which goes back when the last of them ends.
    if (h->connection == &c) {
      ++r.pac_call_id_sharers;
      calls_[call.id].pac_call_key = key;
      return true;
    }
    // A call adopted at a restart or taken over from the HA peer: its GRE still flows.
    if (h->connection == nullptr) return false;
    // Another connection's call has it: the server cannot tell the two calls' GRE apart. One
    // that ran past its range is cut (a host with 1,024 calls on one connection denied the
    // next 7 clients of its pptpd, s35 second review N4); else the new call is refused.
    if (!holder_ran_past_its_range(h->ordinal, call.ordinal)) return false;
    cut_for_server_call_id(*h->connection, id);
  }
  pac_call_ids_.hold(key, PacCallHolder{call.id, &c, call.ordinal});
  calls_[call.id].pac_call_key = key;
  ++counters_.stale_gre_forgets;
  if (stale_gre_.size() < kMaxStaleGreForgets) stale_gre_.push_back(StaleGre{c.pac.address, r.outside, id});
  return true;
}

// RFC 2637 2.8: the client is told its call failed, Result Code 2 (General Error) and Error
// Code 4 (No-Resource), patched in place (same length: TCP sequence numbers hold) when the
// segment's verdict is issued, after this, and into the reply's retransmissions. A Result
// Code that left in an earlier segment, before the reply was whole, cannot be (counted).
bool Gateway::tells_pns_reply_refused(const track::ControlConnection& c, std::uint32_t message_sequence,
                                      std::uint32_t segment_start) {
  const std::uint32_t result_sequence = message_sequence + kReplyResultCodeOffset;
  if (static_cast<std::int32_t>(result_sequence - segment_start) < 0) {  // serial arithmetic
    ++counters_.pac_call_id_refusal_unsignalled;
    return false;
  }
  record_of(c).patches[index_of(Direction::PacToPns)].edit().add(result_sequence, kReplyGeneralErrorNoResource);
  return true;
}

// Its segments and GRE are dropped from now on, as for the operator's kill: the server keeps
// its calls, so their Call IDs stay held until the connection ends.
void Gateway::cut_for_server_call_id(const track::ControlConnection& c, std::uint16_t id) {
  ++counters_.connections_cut_server_call_id;
  warnings_.warn_source("connection_cut", c.opener, packet_.time, [&] {
    return fmt::format("{} calls={} reason=\"its call's server Call ID {} lies past the server's range of 128 for it and was given to another connection's call\"",
                       describe(c), c.calls.open_count(), id);
  });
  KillResult cut;
  kill_connection(c, cut, false);
}

// A call whose server call may live on (pac_call_may_live) keeps its server Call ID until its
// connection ends, as its outside Call ID: a new call given that ID would share the server's
// call (s35 second review: the holder idled out, and a client with 129 calls took its ID unchecked).
void Gateway::release_pac_call_id(const track::ControlConnection& c, const track::Call& call, const PacCallKey& key) {
  const auto it = connections_.find(c.id);
  // Parked before any hand-over: a sharer that ends later must not give back the ID of a
  // server call that may live (s37 review R3).
  if (call.pac_call_may_live && it != connections_.end() && c.state != track::ConnectionState::Closed) {
    it->second.parked_pac_call_ids.push_back(ParkedPacCallId{key, call.id});
    return;
  }
  if (it != connections_.end() && hand_over_pac_call_id(c, it->second, call, key)) return;
  pac_call_ids_.release(key, call.id);
}

// A server Call ID two calls of one connection share (may_name_pac_call_id) stays held while
// either lives: before, the first to end gave it back under the other (s36 review N3), and
// another client's call could be given it unchecked. A walk of the connection's calls, only
// where the server gave such a duplicate.
bool Gateway::hand_over_pac_call_id(const track::ControlConnection& c, ConnectionRecord& r, const track::Call& call,
                                    const PacCallKey& key) {
  if (r.pac_call_id_sharers == 0) return false;
  const PacCallHolder* h = pac_call_ids_.holder(key);
  if (h == nullptr || h->connection != &c) return false;  // lost to another connection's call
  if (h->call_id != call.id) {                             // a sharer ends: the holder keeps it
    --r.pac_call_id_sharers;
    return true;
  }
  for (const auto& other : c.calls) {
    if (other->id == call.id) continue;
    const auto rec = calls_.find(other->id);
    if (rec == calls_.end() || rec->second.pac_call_key != key) continue;
    pac_call_ids_.hold(key, PacCallHolder{other->id, &c, other->ordinal});
    --r.pac_call_id_sharers;
    return true;
  }
  return false;
}

void Gateway::on_request_refused(const track::ControlConnection& c, wire::ControlMessageType type,
                                 std::uint32_t message_sequence) {
  const std::uint32_t field_sequence = message_sequence + nat::call_id_field(type, true).offset;
  translator_.give_back(c.id, field_sequence);  // reserved if the field came before the message was whole
  refuse(record_of(c), field_sequence);
}

void Gateway::refuse(ConnectionRecord& r, std::uint32_t field_sequence) {
  // The request, its retransmissions and what follows it are dropped (after_refusal): the
  // server never sees it, and cannot take anything past it (TCP delivers in order), so a
  // later refusal does not replace the first. RFC 2637 has no way to refuse a call from the
  // middle of the stream; the proxy mode can answer with a result code instead.
  if (!r.refused_sequence || static_cast<std::int32_t>(field_sequence - *r.refused_sequence) < 0) {
    r.refused_sequence = field_sequence;
  }
  // What was held for an undecided field goes too: nothing of the PNS's is decided after this.
  r.held[index_of(Direction::PnsToPac)].drop(held_overall_, counters_, released_);
}

bool Gateway::map_call_id(const track::ControlConnection& c, const track::Call& call, ConnectionRecord& r,
                          std::uint32_t field_sequence) {
  resolve_outside(c, r);
  const std::uint16_t inside_call_id = *call.pns_call_id;
  // The outside Call ID reserved when the field came in (a split request) is the one the
  // server has seen, or part of it: the call keeps it.
  auto mapped = translator_.reserved(c.id, field_sequence)
                    ? translator_.confirm(c.id, field_sequence, c.pns.address, inside_call_id)
                    : translator_.map_call(c.id, c.pns.address, r.outside, c.pac.address, inside_call_id);
  if (!mapped) {
    if (mapped.error() == nat::NatError::Exhausted || mapped.error() == nat::NatError::ReservedForOthers) {
      ++counters_.calls_refused;
      const bool reserve = mapped.error() == nat::NatError::ReservedForOthers;
      warnings_.warn(nat::name_of(mapped.error()), packet_.time, [&] {
        return fmt::format("call refused: {} toward {} from {} {} pns_call_id={}",
                           reserve ? "only the reserve left, and the client holds its share"
                                   : "no Call ID left",
                           to_string(c.pac.address), to_string(r.outside), describe(c), inside_call_id);
      });
    }
    return false;
  }
  const nat::CallMapping* m = *mapped;
  if (m->translated()) {
    warnings_.limit_call("call_id_translated", c.opener, packet_.time, [&] {
      log_->info("call_id_translated {} pns_call_id={} outside_call_id={} outside={}", describe(c), inside_call_id,
                 m->outside_call_id, to_string(m->outside));
    });
    r.patches[index_of(Direction::PnsToPac)].edit().add(field_sequence, m->outside_call_id);
  }
  return true;
}

void Gateway::on_call_changed(const track::ControlConnection& c, const track::Call& call) {
  CallRecord& r = calls_[call.id];
  log_call_events(c, call, r);
  maybe_offload(c, call, r);
  if (call.auth_succeeded && (r.logged & kLoggedVerdict) == 0) {
    r.logged |= kLoggedVerdict;
    log_->info("call_auth {} {} success={}", describe(c), call_ids(call), *call.auth_succeeded);
  }
  if (call_observer_ && call.pns_call_id) {
    call_observer_->call_changed(c, call, r, translator_.find_inside(c.id, *call.pns_call_id));
  }
}

void Gateway::log_call_events(const track::ControlConnection& c, const track::Call& call, CallRecord& r) {
  // One line per event of a call: established, user name seen, authentication verdict.
  if (call.state == track::CallState::Established && (r.logged & kLoggedEstablished) == 0) {
    r.logged |= kLoggedEstablished;
    const nat::CallMapping* m = call.pns_call_id ? translator_.find_inside(c.id, *call.pns_call_id) : nullptr;
    warnings_.limit_call("call_established", c.opener, packet_.time, [&] {
      log_->info("call_established {} {} outside_call_id={} origin={}", describe(c), call_ids(call),
                 CallIdWord{m != nullptr ? std::optional{m->outside_call_id} : std::nullopt},
                 track::name_of(call.origin));
    });
  }
  // The name the PAC accepted is who the call is (a re-authentication may change it): judge
  // the call again by that name.
  if (call.user && r.judged_user != call.user->name) {
    r.judged_user = call.user->name;
    warnings_.limit_call("call_user", c.opener, packet_.time, [&] {
      log_->info("call_user {} {} user=\"{}\" method={} established=accepted_by_pac authentications={}", describe(c),
                 call_ids(call), printable_name(call.user->name), wire::name_of(call.user->method),
                 call.authentications);
    });
    if (r.policy && gate_.judge_again(c, call, *r.policy, "call_user")) offloader_.withdraw(r);
  }
}

void Gateway::maybe_offload(const track::ControlConnection& c, const track::Call& call, CallRecord& r) {
  if (!offloader_.enabled() || r.offload) return;
  if (call.state != track::CallState::Established || !call.pns_call_id || !call.pac_call_id) return;
  if (gate_.policy() && (!r.policy || r.policy->outcome != policy::Outcome::Allow)) return;
  // The first packets (LCP, authentication) stay here, so the PPP name is read.
  if (!call.user && call.gre[0].packets + call.gre[1].packets < track::kAuthScanPackets) return;
  if (const nat::CallMapping* m = translator_.find_inside(c.id, *call.pns_call_id)) offloader_.offer(c, call, r, *m);
  if (r.offload) tracker_.forget_auth_state(c, call);  // no frame of it comes here now
}

void Gateway::on_call_closed(const track::ControlConnection& c, const track::Call& call) {
  // A server opens and ends calls on a connection as fast as it likes (Incoming-Call-Request,
  // Call-Disconnect-Notify): 754 MB of these lines in 20 s before they had a budget (s35
  // review F2). The budget is the client's (LogLimiter::limit_call).
  warnings_.limit_call("call_closed", c.opener, packet_.time, [&] {
    log_->info("call_closed {} {} reason=\"{}\" gre_to_pac={} gre_to_pns={}", describe(c), call_ids(call),
               call.close_reason, call.gre[0].packets, call.gre[1].packets);
  });
  end_call(c, call);
  if (auto it = connections_.find(c.id); it != connections_.end()) settle(it->second, c);
}

bool Gateway::may_end_clearing_call(const track::ControlConnection& c, const track::Call& call) {
  // Its outside Call ID is held when it ends (end_call); without room for the hold the old
  // call stays and the reuse waits (deferred): a freed ID could reach another client's call.
  const nat::CallMapping* m = call.pns_call_id ? translator_.find_inside(c.id, *call.pns_call_id) : nullptr;
  return m == nullptr || translator_.may_hold(m->inside);
}

void Gateway::end_call(const track::ControlConnection& c, const track::Call& call) {
  if (call_observer_) call_observer_->call_ended(c, call);
  if (call.pns_call_id && call.pac_call_may_live) {
    // The server's call may be up for as long as the connection lives (s33 review).
    translator_.park(c.id, *call.pns_call_id, packet_.time + nat::kHeldCallIdSeconds);
  } else if (call.pns_call_id && call.pac_may_still_send) {
    // Its outside Call ID reaches no other call while the server may still use it.
    translator_.release_held(c.id, *call.pns_call_id, packet_.time + nat::kHeldCallIdSeconds);
  } else if (call.pns_call_id) {
    translator_.release(c.id, *call.pns_call_id);
  }
  const auto it = calls_.find(call.id);
  if (it == calls_.end()) return;
  if (it->second.pac_call_key) release_pac_call_id(c, call, *it->second.pac_call_key);
  offloader_.withdraw(it->second);
  if (it->second.policy) gate_.release_call(*it->second.policy);
  if (it->second.budget_source) budgets_.release_call(*it->second.budget_source);
  calls_.erase(it);
}

// ---- Housekeeping ---------------------------------------------------------------------------

std::vector<ReleasedPacket> Gateway::take_released() {
  std::vector<ReleasedPacket> out;
  out.swap(released_);
  return out;
}

void Gateway::expire(double now) {
  packet_ = PacketContext{now, std::nullopt};
  tracker_.expire(now);
  translator_.expire_held(now);
  offloader_.expire_adopted(now, translator_);
  // Patches outlive their connection for one idle period: late retransmissions need them.
  // A closed connection's held segments have gone above; without patches it goes too.
  std::vector<std::uint64_t> gone;
  for (const auto& [id, r] : connections_) {
    const bool patched = r.patches[0].size() + r.patches[1].size() > 0;
    if (r.closed_at && (!patched || now - *r.closed_at > options_.timeouts.connection_idle)) gone.push_back(id);
  }
  for (const std::uint64_t id : gone) forget_record(id);
}

void Gateway::shutdown(double now) {
  packet_ = PacketContext{now, std::nullopt};
  tracker_.close_all(now, "daemon stopped");
  // close_all dropped every held segment (on_connection_closed): none leaves untranslated.
  warnings_.report_suppressed();  // the last window's counts: every event a line or counted
}

void Gateway::set_policy(std::shared_ptr<const policy::Policy> p) {
  const bool reload = gate_.policy() != nullptr;
  gate_.set(std::move(p));
  if (!gate_.policy()) {
    for (auto& [id, r] : calls_) r.policy.reset();
    return;
  }
  if (!reload || gate_.policy()->on_reload != policy::OnReload::Rejudge) return;
  tracker_.for_each_connection([&](const track::ControlConnection& c) {
    for (const auto& call : c.calls) {
      const auto it = calls_.find(call->id);
      if (it == calls_.end() || !it->second.policy) continue;
      if (gate_.judge_again(c, *call, *it->second.policy, "reload")) offloader_.withdraw(it->second);
    }
  });
}

}  // namespace pptp::gateway
