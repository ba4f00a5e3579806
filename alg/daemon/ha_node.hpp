// The daemon's side of high availability (docs/ha.md): the gateway's call lifecycle goes
// to the sync channel (CallObserver), the peer's calls come back into a replica, and
// promote/demote turn the replica into fast-path elements and back. The socket is read on
// the daemon's loop; the channel's timers run on its tick. Private to the daemon library.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange
#include <vector>

#include <boost/asio.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "alg/core/window_budget.hpp"
#include "alg/daemon/child_command.hpp"
#include "alg/daemon/ha_healing.hpp"
#include "alg/daemon/ha_options.hpp"
#include "gateway/gateway.hpp"
#include "sync/channel.hpp"
#include "sync/udp_link.hpp"

namespace pptp::daemon {

enum class HaRole : std::uint8_t { Standby, Active };

// Message heads sent to the peer per second at most (docs/ha.md, "A message split before its
// Call ID field"): about 90 bytes each; past it they are counted (heads_limited), not sent.
inline constexpr std::uint32_t kMaxHeadsPerSecond = 2000;

// The record of a call the gateway holds; empty until both Call IDs and the mapping are
// known (only such a call can be carried on by the peer).
std::optional<sync::CallState> call_state(const track::ControlConnection& c, const track::Call& call,
                                          const gateway::CallRecord& r, const nat::CallMapping* m,
                                          std::uint64_t wall_ms);
// The fast path's view of a replicated call.
nat::CallBinding binding_of(const sync::CallState& s);
// Promoted calls as the gateway adopts them (as a restart adopts the kernel's elements):
// their outside Call IDs reserved, nothing counted yet.
std::vector<gateway::OffloadCount> adoption_counts(const std::vector<nat::CallBinding>& calls);
// The replicated calls a promotion takes over: not those denied or pending, nor those
// whose control connection is gone (no one could clear them; issue 18, "Roles"), and of
// two records naming one outside Call ID toward one server, the newer only.
std::vector<sync::CallState> calls_to_take_over(const sync::Replica& replica, const ConnectionAlive& alive);

// Whether the peer carries the control connection pns-pac now: we are standby, the peer
// says active (its Hellos), and it publishes calls on that connection (it took them over at
// a healing or a failover). Then our own state of that connection is stale (docs/ha.md,
// "Letting go of what the peer carries"). Decided from the authenticated sync channel and
// our role only, nothing a packet says. Both standby (a restarted active daemon that holds
// the addresses) decides nothing.
bool peer_carries(const sync::Replica& replica, HaRole role, bool peer_active, const wire::Endpoint& pns,
                  const wire::Endpoint& pac);

// A control connection: the client's (PNS) end, the server's (PAC) end.
using ControlEnds = std::pair<wire::Endpoint, wire::Endpoint>;
// The control connections of `calls`, each once, in order.
std::vector<ControlEnds> connections_of(const std::vector<sync::CallState>& calls);
// What a takeover runs before it installs the replicated calls: the daemon lets go of its
// own state of their control connections (docs/ha.md, "Letting go of what the peer carries").
using LetGo = std::function<void(const std::vector<ControlEnds>&)>;
// Whether a call of ours holds that binding's outside Call ID toward its server now.
using OutsideInUse = std::function<bool(const nat::CallBinding&)>;

// The calls this node took over at its promotion or a healing, by key. Their control
// connections are picked up mid-stream, so the gateway has no mapping for them: it finds
// them here by any of their Call IDs to translate their messages' Call-ID fields (a
// client's Call-Clear-Request names its own Call ID, which the server knows by the outside
// one, RFC 2637 2.12) and to end them.
class TakenOverCalls {
 public:
  void take(std::vector<sync::CallState> calls);  // replaces them (a promotion)
  void add(std::vector<sync::CallState> calls);   // beside them (a split brain's healing)
  bool contains(const sync::CallKey& k) const { return calls_.contains(k); }
  // The call of the control connection pns-pac that `id` names on side `by`.
  std::optional<gateway::TakenOverIds> find(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                            gateway::CallIdSide by, std::uint16_t id) const;
  std::vector<nat::CallBinding> bindings() const;
  bool holds(const wire::Endpoint& pns, const wire::Endpoint& pac) const;
  // Where the control connection pns-pac resumes: the positions of its most recently
  // changed call that has them (the latest boundaries known); none known, if none has.
  std::optional<track::ResumePositions> positions(const wire::Endpoint& pns, const wire::Endpoint& pac) const;
  // The peer's heads of messages it passed in part on the connections of the calls held,
  // copied from the replica when they are taken: the peer, demoted, lets go of those
  // connections and deletes their calls from the replica, and their heads with them, before
  // the rest of such a message may come (docs/ha.md, "A message split before its Call ID field").
  void keep_heads(const sync::Replica& replica);
  const sync::MessageHead* head(const wire::Endpoint& pns, const wire::Endpoint& pac, std::uint8_t direction) const;
  // Those `e` ends on the control connection pns-pac, taken out.
  std::vector<sync::CallState> end(const wire::Endpoint& pns, const wire::Endpoint& pac,
                                   const gateway::TakenOverEnd& e);
  // Those `selected` picks, taken out (an operator's kill).
  std::vector<sync::CallState> take_out_if(const std::function<bool(const sync::CallState&)>& selected);
  // Those no longer offloaded (idled out, or never adopted) taken out: their Call IDs name
  // nothing any more, and a new call on the connection may take them; returns how many.
  std::size_t retire(const std::vector<nat::CallBinding>& offloaded);
  std::size_t size() const { return calls_.size(); }
  bool empty() const { return calls_.empty(); }
  const std::map<sync::CallKey, sync::CallState>& calls() const { return calls_; }
  // Whether the call was carried here since the last clear(), also once it ended or retired:
  // the peer's record of a call that ended here must not bring it back (HaNode::retake).
  bool ever_held(const sync::CallKey& k) const { return ever_.contains(k); }
  // A call of ours (set up here) ended while active: left out of retakes as those are.
  void note_ended(const sync::CallKey& k) { ever_.insert(k); }
  // A promotion: only the calls still carried count as held before.
  void new_activity() {
    ever_.clear();
    for (const auto& [key, s] : calls_) ever_.insert(key);
  }
  void clear() {
    calls_.clear();
    ever_.clear();
    heads_.clear();
  }

 private:
  // The connection pns-pac's calls: one range of the map (keyed by PNS, PAC, then Call ID).
  // A plain pair of iterators: clang 14's std::ranges::subrange over libstdc++ 12's map
  // iterators does not compile.
  template <class It>
  struct Range {
    It first, last;
    It begin() const { return first; }
    It end() const { return last; }
    bool empty() const { return first == last; }
  };
  template <class Map>
  static auto range_of(Map& calls, const wire::Endpoint& pns, const wire::Endpoint& pac) {
    return Range<decltype(calls.begin())>{calls.lower_bound(sync::CallKey{pns, pac, 0}),
                                          calls.upper_bound(sync::CallKey{pns, pac, 0xFFFF})};
  }
  void drop_heads_without_calls();  // a connection's heads go with its last call
  std::map<sync::CallKey, sync::CallState> calls_;
  std::set<sync::CallKey> ever_;  // every key added since the last clear()
  using HeadKey = std::tuple<wire::Endpoint, wire::Endpoint, std::uint8_t>;
  std::map<HeadKey, sync::MessageHead> heads_;
};

// The calls this node took over, published on the channel as its own: the peer, back as
// standby after a failover, gets them in its snapshot and can take them back at a second
// failover. Published until the gateway no longer keeps their elements (the call ended or
// idled out). A demotion hands them over: their records stay (the peer may be promoting
// from them) until the peer has promoted since (its epoch above both nodes' at the
// demotion: it took what it wanted and publishes it as its own) or, failing that, for
// `hold` seconds (a call nobody forwarded that long is gone).
// The offloaded calls by their inbound element's key (server, outside address, outside
// Call ID), sorted once for many lookups.
class OffloadedKeys {
 public:
  explicit OffloadedKeys(const std::vector<nat::CallBinding>& offloaded);
  bool contains(const nat::CallBinding& b) const;

 private:
  using Key = std::tuple<std::uint32_t, std::uint32_t, std::uint16_t>;
  static Key key_of(const nat::CallBinding& b) { return {b.server.value, b.outside.value, b.outside_call_id}; }
  std::vector<Key> keys_;
};

class Republished {
 public:
  void publish(sync::ChannelEnd& channel, const std::vector<sync::CallState>& calls);
  // A demotion: every call carried here (taken over, or adopted at a restart; not handed
  // over yet) is handed over at `now` (seconds), the highest epoch then `epoch`; returns
  // their bindings.
  std::vector<nat::CallBinding> hand_over(std::uint32_t epoch, double now);
  // Deletes those whose binding is not among `offloaded` (every call whose elements the
  // gateway keeps), and the handed-over ones whose time is up (above); returns how many.
  std::size_t retire(sync::ChannelEnd& channel, const std::vector<nat::CallBinding>& offloaded, double now,
                     double hold);
  bool empty() const { return calls_.empty(); }

 private:
  struct Entry {
    nat::CallBinding binding;
    std::optional<double> handed_over_at;  // a demotion's time; none while carried here
    std::uint32_t epoch = 0;               // the highest at that demotion
  };
  std::map<sync::CallKey, Entry> calls_;
};

// The records `ctl calls` lists under "replicated" and "taken_over" (ha_status.cpp).
nlohmann::json records_json(const std::vector<sync::CallState>& records);

class HaNode final : public gateway::CallObserver {
 public:
  using Clock = std::function<double()>;
  static Result<std::unique_ptr<HaNode>, std::string> open(const HaOptions& o, boost::asio::io_context& io,
                                                           std::shared_ptr<spdlog::logger> log, Clock clock);
  HaNode(const HaNode&) = delete;
  HaNode& operator=(const HaNode&) = delete;
  ~HaNode() override { socket_.release(); }  // the link closes its socket

  // The channel's resends and Hellos; the datagrams go out.
  void tick();
  // CallObserver: the gateway's calls, published to the peer.
  void call_changed(const track::ControlConnection& c, const track::Call& call, const gateway::CallRecord& r,
                    const nat::CallMapping* m) override;
  void call_ended(const track::ControlConnection& c, const track::Call& call) override;

  // Promotion: the replicated calls' bindings, to install and adopt (those whose control
  // connection is alive); refused while the replica is not whole (no snapshot from the
  // peer's current run) unless forced.
  // `let_go` runs first, still standby, with the control connections of the calls it takes
  // over (nothing published yet: our stale records of them are deleted before theirs go out).
  Result<std::vector<nat::CallBinding>, std::string> promote(bool force, const ConnectionAlive& alive,
                                                             const LetGo& let_go = nullptr);
  // CallObserver: a call taken over, on its control connection, by one of its Call IDs.
  std::optional<gateway::TakenOverIds> taken_over_call(const track::ControlConnection& c, gateway::CallIdSide by,
                                                       std::uint16_t id) const override;
  // CallObserver: whether `c` carries calls taken over (still held: not ended yet).
  bool holds_taken_over(const track::ControlConnection& c) const override;
  std::optional<track::ResumePositions> resume_positions(const track::ControlConnection& c) const override;
  // CallObserver: the peer's head of a message it passed in part on a connection taken over.
  std::optional<stream::ResumeHead> resume_head(const track::ControlConnection& c, track::Direction d) const override;
  // CallObserver: a head passed here on a connection of our published calls, to the peer.
  void message_head_passed(const track::ControlConnection& c, track::Direction d, std::uint32_t sequence,
                           Bytes head) override;
  // CallObserver: taken-over calls cleared on their control connection (docs/ha.md).
  std::vector<nat::CallBinding> end_taken_over(const track::ControlConnection& c,
                                               const gateway::TakenOverEnd& e) override;
  // `ctl kill --user NAME | --client ADDRESS` on the calls taken over (active only; a
  // call id names tracker calls only). Their records are deleted for the peer once their
  // elements are gone (retire_ended), as at any end.
  std::vector<gateway::TakenOverKill> kill_taken_over(const gateway::KillRequest& which) override;
  // A split brain's healing (docs/ha.md): the handler runs when the watch fires, from the
  // socket's read (the daemon commits conntrackd's cache, then adopts what
  // take_over_at_healing gives, in one batch); the calls are added to the taken-over ones.
  void set_healing_handler(std::function<void()> h) { on_healing_ = std::move(h); }
  // A retake due (retake_due) found at the socket's read that made it so: the peer's
  // snapshot whole, the peer standby. At once, not at the next tick: the peer's calls have
  // no GRE forwarded until then (the daemon commits, then retakes).
  void set_retake_handler(std::function<void()> h) { on_retake_ = std::move(h); }
  // Runs the commit command beside the loop (killed after `limit`: --ha-commit-timeout),
  // then `adopt` on the loop, whatever its outcome (a failure counted); "none" or empty:
  // `adopt` at once. A healing while one commits runs the handler again after it.
  // `for_retake`: a retake's commit, logged and counted as such (retake_commit_failures).
  void commit_then(const std::string& command, std::chrono::milliseconds limit, std::function<void()> adopt,
                   bool for_retake = false);
  // `let_go` as at promote(), with those of their connections that hold no call taken over.
  std::vector<nat::CallBinding> take_over_at_healing(const ConnectionAlive& alive,
                                                     const std::vector<nat::CallBinding>& offloaded,
                                                     const LetGo& let_go = nullptr);
  // Within kHealingLateWindow after a healing, active, the peer standby, no commit running:
  // true when the replica holds a call of the peer's half that no round of this healing
  // considered (its record came after). The daemon then runs the healing's handler again.
  bool healing_late_due(const std::function<std::vector<nat::CallBinding>()>& offloaded);
  // Active already (a second `ctl promote`, or retake_due): the peer's replicated calls that
  // nothing here carries (calls_to_take_over_beside, any half), to install and adopt, let go
  // of and published as a promotion's. Refused while the peer is active too (a split brain:
  // its healing takes them). A new epoch when it takes some.
  // Never a call carried here before in this activity (ended since, or retired), nor one
  // whose outside Call ID `in_use` says a call of ours has now (its elements would take
  // that call's GRE). The epoch goes past the peer's if it is not yet (a start promotion
  // read nothing of it).
  Result<std::vector<nat::CallBinding>, std::string> retake(const ConnectionAlive& alive,
                                                            const std::vector<nat::CallBinding>& offloaded,
                                                            const OutsideInUse& in_use,
                                                            const LetGo& let_go = nullptr);
  // How many calls a retake would consider now, whether their connections are alive or not
  // (none: no commit command needed before it).
  std::size_t retake_candidates(const std::vector<nat::CallBinding>& offloaded) const;
  // True once after a promotion made without the peer's whole snapshot (forced, or a
  // restarted daemon's at its start), when that snapshot is whole, the peer standby and no
  // commit command running (a healing's: the retake comes at a later tick).
  bool retake_due();
  // Demotion: the bindings of the calls this node carries for the pair (taken over at a
  // promotion or a healing, or adopted at a restart and published again), to remove; even
  // while standby, which a restarted active daemon is (its adopted calls' elements would
  // stay on the node that gave the addresses up).
  std::vector<nat::CallBinding> demote();
  // The free peer_carries() on this node's replica, role and the peer's last Hello.
  bool peer_carries(const wire::Endpoint& pns, const wire::Endpoint& pac) const {
    return daemon::peer_carries(channel_.replica(), role_, channel_.peer_active(), pns, pac);
  }
  void note_released(std::size_t calls, bool conntrack_liberal);
  // After a restart, with the calls adopted from the kernel's elements: those of the
  // previous run's published table (the state file) still offloaded are published again,
  // as the promoted node's taken-over calls are; returns how many.
  std::size_t republish_adopted(const std::vector<nat::CallBinding>& offloaded);
  // Republished's and the taken-over calls' retirement, from the daemon's tick (only while
  // there are some).
  bool republishing() const { return !republished_.empty() || !taken_over_.empty(); }
  // `hold`: how long a demotion's handed-over records stay without the peer's promotion
  // (the call idle timeout: a call nobody forwarded that long is gone).
  void retire_ended(const std::vector<nat::CallBinding>& offloaded, double hold);

  void note_standby_holds_virtual_address() { ++standby_holds_virtual_address_; }
  HaRole role() const { return role_; }
  // `ctl calls` (copied on the loop, formatted by records_json on the worker): the peer's
  // calls, and those carried here (none while standby).
  std::vector<sync::CallState> replicated_records() const;
  std::vector<sync::CallState> taken_over_records() const;
  // The elements of the calls taken over and carried here (none while standby).
  std::vector<nat::CallBinding> carried_bindings() const {
    return role_ == HaRole::Active ? taken_over_.bindings() : std::vector<nat::CallBinding>{};
  }
  nlohmann::json status_json() const;
  // The node's counters, each once (key, value, help): the status file's `ha` object and the
  // metrics endpoint (pptp_alg_ha_<key>_total) are both made from this list.
  template <typename F>
  void visit_counters(F&& f) const {
    const sync::ChannelCounters& n = channel_.counters();
    f("sent", n.sent, "sync messages sent (resends not counted)");
    f("resent", n.resent, "sync messages sent again, unacknowledged");
    f("received", n.received, "sync messages received and authenticated");
    f("refused", n.refused, "sync datagrams that did not decode (bad tag, truncated, ...)");
    f("stale_hellos", n.stale_hellos,
      "the peer's Hellos older than one heard before (held back on the link): role ignored");
    f("snapshots_sent", n.snapshots_sent, "full snapshots sent to the peer");
    f("snapshots_received", n.snapshots_received, "full snapshots received from the peer");
    f("heads_sent", n.heads_sent, "heads of messages passed in part, sent to the peer (docs/ha.md)");
    f("heads_kept", n.heads_kept, "the peer's heads of messages passed in part, kept for its connections");
    f("heads_unkept", n.heads_unkept, "the peer's heads not kept: no call of its on that connection, or older");
    f("heads_limited", heads_budget_.refused(), "heads not sent: past kMaxHeadsPerSecond");
    f("send_failures", send_failures_, "sync datagrams the socket did not send");
    f("healings", healings_,
      "split brains healed while active (the peer went from active to standby, or its epoch rose unseen)");
    f("healing_calls", healing_calls_, "the peer's calls taken over at a split brain's healing");
    f("healing_late_rounds", healing_late_rounds_,
      "takeovers after a healing for the peer's records that came after it (HealingLate)");
    f("healing_commit_failures", healing_commit_failures_, "the commit command at a healing failed (timeouts too)");
    f("healing_commit_timeouts", healing_commit_timeouts_, "the commit command at a healing killed at its time limit");
    f("retaken_calls", retaken_calls_,
      "the peer's calls taken while active already (its snapshot after a promotion without it, a second promote)");
    f("retake_commit_failures", retake_commit_failures_, "the commit command before a retake failed (timeouts too)");
    f("released_connections", released_connections_,
      "control connections let go of while standby: the active peer carries their calls now");
    f("released_calls", released_calls_, "calls ended with the control connections let go of");
    f("released_conntrack_missed", released_conntrack_missed_,
      "connections let go of whose kernel conntrack entry could not be made liberal (none, or no ctnetlink)");
    f("standby_holds_virtual_address", standby_holds_virtual_address_,
      "demotions after which this node still held the outside virtual address (kVirtualAddressGoneWithin)");
  }

 private:
  HaNode(sync::ChannelEnd channel, sync::UdpLink link, boost::asio::io_context& io,
         std::shared_ptr<spdlog::logger> log, Clock clock);
  void wait_readable();
  void flush();
  void save_table();  // the published calls to the state file, when they changed
  // The calls a retake leaves out: those carried here before in this activity, and (with
  // `in_use`) those whose outside Call ID a call of ours holds now.
  void leave_out_of_retake(std::vector<sync::CallState>& calls, const OutsideInUse& in_use) const;
  // The peer's calls a healing takes (alive: any, with nullptr), less those carried here
  // before in this activity.
  std::vector<sync::CallState> healing_candidates(const std::vector<nat::CallBinding>& offloaded,
                                                  const ConnectionAlive& alive) const;
  // The tail of a takeover beside our calls (a healing, a retake): let go, published, carried.
  std::vector<nat::CallBinding> take_beside(std::vector<sync::CallState> taken, const LetGo& let_go);

  sync::ChannelEnd channel_;
  sync::UdpLink link_;
  boost::asio::posix::stream_descriptor socket_;
  std::shared_ptr<spdlog::logger> log_;
  Clock clock_;
  HaRole role_ = HaRole::Standby;
  TakenOverCalls taken_over_;  // by the last promotion
  Republished republished_;
  std::uint64_t send_failures_ = 0;
  WindowBudget heads_budget_{kMaxHeadsPerSecond};  // message heads sent to the peer
  HealingWatch healing_;
  HealingLate healing_late_;
  std::function<void()> on_healing_;
  std::function<void()> on_retake_;
  std::uint64_t healings_ = 0, healing_calls_ = 0, healing_commit_failures_ = 0, healing_commit_timeouts_ = 0;
  std::uint64_t healing_late_rounds_ = 0;
  std::uint64_t retaken_calls_ = 0, retake_commit_failures_ = 0;
  bool retake_pending_ = false;  // promoted without the peer's whole snapshot (retake_due)
  std::uint64_t released_connections_ = 0, released_calls_ = 0, released_conntrack_missed_ = 0;
  std::uint64_t standby_holds_virtual_address_ = 0;
  ChildCommand commit_;     // the commit command at a healing, while it runs
  bool heal_again_ = false; // a healing came while it ran
  std::string state_file_;
  // Nothing to write until the previous run's table was read (republish_adopted) or a call
  // changed: the first tick must not overwrite it.
  bool table_changed_ = false;
  bool save_failing_ = false;
};

}  // namespace pptp::daemon
