#include "gateway/offloader.hpp"

#include <map>
#include <tuple>

#include "gateway/describe.hpp"

namespace pptp::gateway {

using track::Direction;
using wire::to_string;

void Offloader::offer(const track::ControlConnection& c, const track::Call& call, CallRecord& r,
                      const nat::CallMapping& m) {
  if (!enabled_ || r.offload || !call.pns_call_id || !call.pac_call_id) return;
  const OffloadedCall o{m.server, m.outside, m.inside, m.outside_call_id, m.inside_call_id, *call.pac_call_id};
  // Armed by the packet that brought the offload.
  r.offload = Offload{o, c.pns, c.pac, *call.pns_call_id, 0, 0, call.last_activity};
  // One entry per key, as a map's assignment: a later call with the same key replaces it.
  for (const bool inbound : {true, false}) {
    const OffloadRef ref = ref_of(*r.offload, inbound);
    const CountKey k = key_of(ref);
    offloaded_index_.assign(hash_of(k), ref, [&](OffloadRef x) { return key_of(x) == k; }, ref_hash);
  }
  ++offloaded_;
  changes_.push_back(OffloadChange{true, o});
  armed_.push_back(Armed{o, call.last_activity});
  ++counters_.calls_offloaded;
  log_->info("call_offloaded {} {} outside_call_id={} note=\"its GRE is forwarded by the kernel\"", describe(c),
             call_ids(call), m.outside_call_id);
}

void Offloader::withdraw(CallRecord& r) {
  if (!r.offload) return;
  changes_.push_back(OffloadChange{false, r.offload->call});
  for (const bool inbound : {true, false}) {
    const OffloadRef ref = ref_of(*r.offload, inbound);
    offloaded_index_.erase(hash_of(key_of(ref)), [ref](OffloadRef x) { return x == ref; }, ref_hash);
  }
  r.offload.reset();
  --offloaded_;
}

std::vector<OffloadChange> Offloader::take_changes() {
  std::vector<OffloadChange> out;
  out.swap(changes_);
  return out;
}

std::vector<OffloadedCall> Offloader::calls(const CallTable& table) const {
  std::vector<OffloadedCall> out;
  out.reserve(offloaded_ + adopted_.size());
  for (const auto& [id, r] : table) {
    if (r.offload) out.push_back(r.offload->call);
  }
  for (const Adopted& a : adopted_) out.push_back(a.call);
  return out;
}

std::vector<OffloadedCall> Offloader::calls_to(const CallTable& table, const std::set<std::uint32_t>& addresses) const {
  std::vector<OffloadedCall> out;
  if (addresses.empty()) return out;
  const auto wanted = [&](const OffloadedCall& c) {
    return addresses.count(c.inside.value) != 0 || addresses.count(c.server.value) != 0;
  };
  for (const auto& [id, r] : table) {
    if (r.offload && wanted(r.offload->call)) out.push_back(r.offload->call);
  }
  for (const Adopted& a : adopted_) {
    if (wanted(a.call)) out.push_back(a.call);
  }
  return out;
}

std::vector<OffloadedCall> Offloader::due_for_rearm(double now, double every) {
  std::vector<OffloadedCall> due;
  while (!armed_.empty() && now - armed_.front().at >= every) {
    const Armed front = armed_.front();
    armed_.pop_front();
    double* at = armed_at(front.call);
    if (at == nullptr || *at != front.at) continue;
    *at = now;
    due.push_back(front.call);
    armed_.push_back(Armed{front.call, now});
  }
  return due;
}

double* Offloader::armed_at(const OffloadedCall& c) {
  const CountKey k = in_key(c);
  if (Offload* o = find_offloaded(k); o != nullptr && o->call == c) return &o->armed_at;
  const auto it = adopted_index_.find(k);
  return it != adopted_index_.end() && adopted_[it->second].call == c ? &adopted_[it->second].armed_at : nullptr;
}

Offloader::CountKey Offloader::in_key(const OffloadedCall& c) {
  return {(std::uint64_t{c.server.value} << 32) | c.outside.value,
          (std::uint32_t{c.outside_call_id} << 1) | 1u};
}

Offloader::CountKey Offloader::out_key(const OffloadedCall& c) {
  return {(std::uint64_t{c.inside.value} << 32) | c.server.value,
          std::uint32_t{c.server_call_id} << 1};
}

Offload* Offloader::find_offloaded(const CountKey& k) const {
  const OffloadRef r = offloaded_index_.find(hash_of(k), [&](OffloadRef x) { return key_of(x) == k; });
  return r == 0 ? nullptr : &offload_of(r);
}

void Offloader::index_adopted() {
  adopted_index_.clear();
  for (std::size_t i = 0; i < adopted_.size(); ++i) {
    adopted_index_[in_key(adopted_[i].call)] = adopted_index_[out_key(adopted_[i].call)] = i;
  }
}

void Offloader::note_counts(const std::vector<OffloadCount>& counts, double now,
                            CallTable& /*table*/, track::Tracker& tracker) {
  for (const OffloadCount& n : counts) {
    const CountKey k = n.to_client ? in_key(n.key) : out_key(n.key);
    if (!adopted_index_.empty()) {
      if (auto it = adopted_index_.find(k); it != adopted_index_.end()) {
        Adopted& a = adopted_[it->second];
        std::uint64_t& seen = n.to_client ? a.to_client_seen : a.to_server_seen;
        if (n.packets != seen) a.last_activity = now;
        seen = n.packets;
      }
    }
    Offload* o = find_offloaded(k);
    if (o == nullptr) continue;
    std::uint64_t& seen = n.to_client ? o->to_client_seen : o->to_server_seen;
    // An element re-added after it expired starts counting from zero again.
    const std::uint64_t packets = n.packets >= seen ? n.packets - seen : n.packets;
    seen = n.packets;
    if (packets == 0) continue;
    (n.to_client ? counters_.gre_offloaded_to_pns : counters_.gre_offloaded_to_pac) += packets;
    tracker.note_offloaded_gre(o->pns, o->pac, o->pns_call_id,
                               n.to_client ? Direction::PacToPns : Direction::PnsToPac, packets, 0,
                               now);
  }
}

std::size_t Offloader::adopt(const std::vector<OffloadCount>& counts, double now,
                             nat::CallIdTranslator& translator) {
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::uint16_t>, std::size_t> seen;  // by inbound key
  std::size_t adopted = 0;
  for (const OffloadCount& n : counts) {
    if (!n.binding) continue;
    const OffloadedCall& c = *n.binding;
    const auto key = std::tuple{c.server.value, c.outside.value, c.outside_call_id};
    auto it = seen.find(key);
    if (it == seen.end()) {
      const std::uint64_t connection = kAdoptedConnectionBase + adopted_total_;
      if (!translator.adopt(connection, c.inside, c.outside, c.server, c.inside_call_id, c.outside_call_id)) {
        warnings_.warn("fast_path_adopt_conflict", now, [&] {
          return fmt::format("server={} outside={} outside_call_id={} note=\"left to expire\"", to_string(c.server),
                             to_string(c.outside), c.outside_call_id);
        });
        continue;
      }
      ++adopted_total_;
      ++adopted;
      adopted_.push_back(Adopted{c, connection, now, 0, 0, now});
      // A call already holding the server Call ID keeps it (a promoted node's own call).
      if (pac_call_ids_.holder(pac_call_key(c)) == nullptr) pac_call_ids_.hold(pac_call_key(c), PacCallHolder{connection, nullptr});
      armed_.push_back(Armed{c, now});  // the daemon re-arms adopted calls at once
      it = seen.emplace(key, adopted_.size() - 1).first;
      log_->info("call_adopted server={} outside={} outside_call_id={} inside={} inside_call_id={} "
                 "server_call_id={} note=\"offloaded by the previous run; kept while its GRE flows\"",
                 to_string(c.server), to_string(c.outside), c.outside_call_id, to_string(c.inside), c.inside_call_id,
                 c.server_call_id);
    }
    Adopted& a = adopted_[it->second];
    (n.to_client ? a.to_client_seen : a.to_server_seen) = n.packets;  // counts from here on
  }
  index_adopted();
  return adopted;
}

void Offloader::release_adopted(const Adopted& a, nat::CallIdTranslator& translator) {
  translator.release(a.connection_id, a.call.inside_call_id);
  pac_call_ids_.release(pac_call_key(a.call), a.connection_id);  // only if it holds it
}

void Offloader::expire_adopted(double now, nat::CallIdTranslator& translator) {
  const std::size_t before = adopted_.size();
  std::erase_if(adopted_, [&](const Adopted& a) {
    if (now - a.last_activity <= call_idle_) return false;
    changes_.push_back(OffloadChange{false, a.call});
    release_adopted(a, translator);
    log_->info("adopted_call_ended server={} outside_call_id={} inside={} reason=\"idle timeout\"",
               to_string(a.call.server), a.call.outside_call_id, to_string(a.call.inside));
    return true;
  });
  if (adopted_.size() != before) index_adopted();
}

std::vector<OffloadedCall> Offloader::adopted_calls() const {
  std::vector<OffloadedCall> out;
  out.reserve(adopted_.size());
  for (const Adopted& a : adopted_) out.push_back(a.call);
  return out;
}

bool Offloader::end_adopted(const OffloadedCall& call, std::string_view reason, nat::CallIdTranslator& translator) {
  if (!forget_adopted(call, reason, translator)) return false;
  changes_.push_back(OffloadChange{false, call});
  return true;
}

bool Offloader::forget_adopted(const OffloadedCall& call, std::string_view reason, nat::CallIdTranslator& translator) {
  const auto it = adopted_index_.find(in_key(call));
  if (it == adopted_index_.end() || !(adopted_[it->second].call == call)) return false;
  const Adopted& a = adopted_[it->second];
  release_adopted(a, translator);
  log_->info("adopted_call_ended server={} outside_call_id={} inside={} reason=\"{}\"", to_string(a.call.server),
             a.call.outside_call_id, to_string(a.call.inside), reason);
  adopted_.erase(adopted_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_adopted();
  return true;
}

void Offloader::disable(std::string_view reason, CallTable& table) {
  if (!enabled_) return;
  enabled_ = false;
  log_->warn("fast_path_disabled reason=\"{}\" note=\"GRE goes through the queue\"", reason);
  for (auto& [id, r] : table) r.offload.reset();
  offloaded_index_.clear();
  offloaded_ = 0;
  changes_.clear();
  armed_.clear();
}

}  // namespace pptp::gateway
