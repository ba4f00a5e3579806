// The fast path's bookkeeping (docs/packet-path.md, "Fast path"): which calls the kernel
// forwards, the element changes the daemon must make, the kernel's counters fed back into
// the tracker (so that a busy offloaded call is not idle), and the calls a previous run left
// in the kernel (adopted at a restart). No netlink here: the daemon applies the changes.
#pragma once

#include <spdlog/logger.h>

#include <deque>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "alg/core/flat_index.hpp"
#include "gateway/counters.hpp"
#include "gateway/log_limiter.hpp"
#include "gateway/records.hpp"
#include "nat/call_id_translator.hpp"

namespace pptp::gateway {

using CallTable = std::unordered_map<std::uint64_t, CallRecord>;  // by the tracker's call id

class Offloader {
 public:
  // An adopted call holds its server Call ID in `pac_call_ids` while it lives, as a tracked
  // call does (pac_call_ids.hpp): a call set up later and given that ID by the server ends.
  Offloader(bool enabled, double call_idle, std::shared_ptr<spdlog::logger> log, LogLimiter& warnings,
            GatewayCounters& counters, PacCallIds<>& pac_call_ids)
      : enabled_(enabled),
        call_idle_(call_idle),
        log_(std::move(log)),
        warnings_(warnings),
        counters_(counters),
        pac_call_ids_(pac_call_ids) {}

  bool enabled() const { return enabled_; }
  // Hands the call to the kernel: its elements are added.
  void offer(const track::ControlConnection& c, const track::Call& call, CallRecord& r, const nat::CallMapping& m);
  // Takes the call back (it ended, or the policy cut it): its elements are removed.
  void withdraw(CallRecord& r);
  std::vector<OffloadChange> take_changes();
  // Every call whose elements are in the kernel (their counters are read).
  std::vector<OffloadedCall> calls(const CallTable& table) const;
  // Of them, those whose client (inside) or server address is in `addresses`: the calls a
  // route change may move (--fast-path netdev), without a list of every call.
  std::vector<OffloadedCall> calls_to(const CallTable& table, const std::set<std::uint32_t>& addresses) const;
  // The calls whose elements were last armed (added, adopted or re-armed) `every` seconds
  // ago or more, oldest first; they count as re-armed at `now`. Only those are looked at:
  // not every call, not every offloaded one.
  std::vector<OffloadedCall> due_for_rearm(double now, double every);
  std::size_t offloaded() const { return offloaded_; }
  std::size_t adopted() const { return adopted_.size(); }
  // Every adopted call: `ctl calls`, `ctl kill --client`.
  std::vector<OffloadedCall> adopted_calls() const;
  // The kernel's counters: packets forwarded since the last read go to the tracker. One
  // lookup per count in an index kept as calls come and go (the table is not walked).
  void note_counts(const std::vector<OffloadCount>& counts, double now, CallTable& table, track::Tracker& tracker);
  // After a restart: calls whose elements the previous daemon left in the kernel.
  std::size_t adopt(const std::vector<OffloadCount>& counts, double now, nat::CallIdTranslator& translator);
  // Adopted calls whose counters stopped for the call idle timeout end.
  void expire_adopted(double now, nat::CallIdTranslator& translator);
  // An adopted call ends now (a call taken over at an HA promotion was cleared on its
  // control connection, docs/ha.md): its elements go and are no longer re-armed, its
  // outside Call ID is free. False when no adopted call has that binding.
  bool end_adopted(const OffloadedCall& call, std::string_view reason, nat::CallIdTranslator& translator);
  // As end_adopted(), but its elements are the caller's to remove (no change queued): an HA
  // demotion removes the taken-over calls' elements itself.
  bool forget_adopted(const OffloadedCall& call, std::string_view reason, nat::CallIdTranslator& translator);
  // The kernel refused the elements: GRE goes through the queue from now on.
  void disable(std::string_view reason, CallTable& table);

 private:
  struct Adopted {
    OffloadedCall call;
    std::uint64_t connection_id = 0;  // kAdoptedConnectionBase + n
    double last_activity = 0;
    std::uint64_t to_client_seen = 0, to_server_seen = 0;
    double armed_at = 0;
  };

  // An element's key as the kernel counts it: direction, two addresses, Key.
  using CountKey = std::pair<std::uint64_t, std::uint32_t>;
  struct CountKeyHash {
    std::size_t operator()(const CountKey& k) const {
      return std::hash<std::uint64_t>{}(k.first * 0x9e3779b97f4a7c15ULL ^ k.second);
    }
  };
  static CountKey in_key(const OffloadedCall& c);
  static CountKey out_key(const OffloadedCall& c);
  static std::size_t hash_of(const CountKey& k) { return mix_hash(k.first ^ (std::uint64_t{k.second} << 47) ^ k.second); }
  // An entry of offloaded_index_: the call's Offload, its low bit set for its inbound key
  // (Offload is 8-aligned); 0 is an empty slot.
  using OffloadRef = std::uintptr_t;
  static OffloadRef ref_of(Offload& o, bool inbound) { return reinterpret_cast<std::uintptr_t>(&o) | (inbound ? 1u : 0u); }
  static Offload& offload_of(OffloadRef r) { return *reinterpret_cast<Offload*>(r & ~std::uintptr_t{1}); }
  static CountKey key_of(OffloadRef r) { return (r & 1u) ? in_key(offload_of(r).call) : out_key(offload_of(r).call); }
  static std::size_t ref_hash(OffloadRef r) { return hash_of(key_of(r)); }
  Offload* find_offloaded(const CountKey& k) const;
  void index_adopted();
  static PacCallKey pac_call_key(const OffloadedCall& c) { return PacCallKey{c.server.value, c.outside.value, c.server_call_id}; }
  // An adopted call leaves: its outside Call ID and its server Call ID are free again.
  void release_adopted(const Adopted& a, nat::CallIdTranslator& translator);
  // When a call offloaded here or adopted was last armed; null for a call that left.
  double* armed_at(const OffloadedCall& c);
  struct Armed {
    OffloadedCall call;
    double at = 0;
  };

  bool enabled_;
  double call_idle_;
  std::shared_ptr<spdlog::logger> log_;
  LogLimiter& warnings_;
  GatewayCounters& counters_;
  PacCallIds<>& pac_call_ids_;
  std::size_t offloaded_ = 0;  // records with an Offload
  std::vector<Adopted> adopted_;
  std::uint64_t adopted_total_ = 0;
  std::vector<OffloadChange> changes_;
  // Both elements' keys of every call offloaded here (records are not moved while they live:
  // CallTable's nodes are stable), 8 bytes an entry (issue 17), and of every adopted one
  // (into adopted_; few).
  FlatIndex<OffloadRef> offloaded_index_;
  std::unordered_map<CountKey, std::size_t, CountKeyHash> adopted_index_;
  // Calls in the order their elements were armed; an entry whose call left, or was armed
  // again since (offloaded anew), is dropped when it reaches the front.
  std::deque<Armed> armed_;
};

}  // namespace pptp::gateway
