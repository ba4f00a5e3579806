// Call-ID translation (the NAT table). Behind a masquerading router, clients that talk to the
// same PPTP server from the same public address can pick the same Call ID; the server would
// then send both calls' GRE with the same key to the same address. For each call, the
// client's (PNS's) Call ID is kept where it is free toward that server from that public
// address, and replaced by a free one where it is not. Only the PNS's Call ID is translated:
// the server (PAC) allocates its own Call IDs, unique per server already.
//
// The table answers the three questions of the packet path in O(1):
//  - a call set-up from the inside: which Call ID does the server see? (map_call)
//  - GRE from the server to the public address: which client and Call ID? (find_outside)
//  - a later control message of the call: which Call ID on the other side? (find_inside,
//    find_outside_on_connection)
#pragma once

#include <bitset>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "alg/core/counter_list.hpp"
#include "alg/core/flat_index.hpp"
#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::nat {

inline constexpr std::size_t kCallIdSpace = 65536;  // a Call ID is 16 bits; 0 is valid
// A call that ends before the server answered its clear (a Call ID reused while clearing,
// RFC 2637 2.12-2.13) keeps its outside Call ID this long: the server may still send GRE
// with it, which must reach no other call. At most this many are held per client (inside
// address) and in all; past either no hold is made and the reuse waits instead (may_hold,
// Tracker::waits_for_clearing_call), so that one client's holds never push out another's
// (s19 review).
inline constexpr double kHeldCallIdSeconds = 10;
inline constexpr std::size_t kMaxHeldCallIdsPerClient = 64;
inline constexpr std::size_t kMaxHeldCallIds = 16384;
// A call that idled out while its control connection lives keeps its outside Call ID until
// that connection ends (park): the server's call may still be up. At most this many per
// client (inside address); past it the ID is held kHeldCallIdSeconds as above.
inline constexpr std::size_t kMaxParkedCallIdsPerClient = 1024;
// The last kReservedCallIds free outside Call IDs toward a server (from one public address)
// go only to clients that hold fewer than kFairShareCallIds there (mapped, reserved or
// parked): a few addresses that take the rest cannot keep a new client out (s33 review: 4
// addresses took all 65,536 in 2.4 s). Draining the reserve too needs kReservedCallIds /
// kFairShareCallIds (1,024) addresses. With a node half (HA) it is of the half.
inline constexpr std::size_t kReservedCallIds = 4096;
inline constexpr std::uint32_t kFairShareCallIds = 4;

struct CallMapping {
  std::uint64_t connection_id = 0;  // the control connection (tracker's id)
  wire::Ipv4Address inside;         // the client (PNS) as the router's inside sees it
  wire::Ipv4Address outside;        // the public address the server sees
  wire::Ipv4Address server;         // the PAC
  std::uint16_t inside_call_id = 0;
  std::uint16_t outside_call_id = 0;
  bool translated() const { return inside_call_id != outside_call_id; }
};

enum class NatError : std::uint8_t {
  Exhausted,         // every Call ID toward this server from this public address is taken
  ReservedForOthers, // only the reserve is left, and this client holds its fair share there
  AlreadyMapped,     // the call already has a mapping (a duplicate request)
  OutsideInUse,      // adopt(): that outside Call ID is taken
};
std::string_view name_of(NatError e);

// Declared once (alg/core/counter_list.hpp): the status's "nat" object and the metrics.
#define PPTP_NAT_COUNTERS(X)                                                                     \
  X(calls_mapped, "calls_mapped", "calls given an outside Call ID")                             \
  X(calls_translated, "calls_translated", "calls whose Call ID had to change (it collided)")    \
  X(exhausted, "exhausted", "call set-ups with no Call ID left toward their server")            \
  X(released, "released", "outside Call IDs given back by calls that ended")                    \
  X(holds, "holds", "outside Call IDs held after a Call ID reused while clearing")              \
  X(holds_unavailable, "holds_unavailable", "Call IDs reused while clearing that found no hold left (deferred)") \
  X(parks, "parks", "outside Call IDs kept for calls that idled out while their control connection lives") \
  X(reserve_refused, "reserve_refused", "call set-ups refused: only the reserve left toward the server, and the client holds its fair share there")

struct NatCounters {
  PPTP_NAT_COUNTERS(PPTP_COUNTER_FIELD)
};

template <class F>
void visit_nat_counters(const NatCounters& c, F&& f) {
  PPTP_NAT_COUNTERS(PPTP_COUNTER_VISIT)
}

class CallIdTranslator {
 public:
  // Maps a new call. Keeps `inside_call_id` when it is free toward `server` from `outside`.
  Result<const CallMapping*, NatError> map_call(std::uint64_t connection_id, wire::Ipv4Address inside,
                                                wire::Ipv4Address outside, wire::Ipv4Address server,
                                                std::uint16_t inside_call_id);
  // A Call ID field seen before its message is whole (a split Outgoing-Call-Request or
  // Incoming-Call-Reply): its outside Call ID is chosen and reserved at once, so that no
  // byte of the field leaves untranslated (docs/packet-path.md, "Held segments"). With the
  // inside Call ID known it is kept where free, as map_call does; with only part of the
  // field seen, any free one is taken. Keyed by the field's TCP sequence number; a second
  // call for the same field returns the same Call ID. The reservation routes no GRE.
  Result<std::uint16_t, NatError> reserve(std::uint64_t connection_id, wire::Ipv4Address inside,
                                          wire::Ipv4Address outside, wire::Ipv4Address server,
                                          std::uint32_t field_sequence, std::optional<std::uint16_t> inside_call_id);
  std::optional<std::uint16_t> reserved(std::uint64_t connection_id, std::uint32_t field_sequence) const;
  // The whole message confirmed the call: the reservation becomes its mapping.
  Result<const CallMapping*, NatError> confirm(std::uint64_t connection_id, std::uint32_t field_sequence,
                                               wire::Ipv4Address inside, std::uint16_t inside_call_id);
  // The message was invalid or refused: the Call ID is free again.
  void give_back(std::uint64_t connection_id, std::uint32_t field_sequence);
  // Gives back the connection's reservations for fields before `sequence` (serial
  // arithmetic): their messages were whole and none confirmed them.
  void give_back_before(std::uint64_t connection_id, std::uint32_t sequence);
  std::size_t reservations() const { return reservations_.size(); }

  // A call found already running (the kernel's fast-path elements after a daemon restart):
  // its outside Call ID is given, not chosen, and reserved like any other.
  Result<const CallMapping*, NatError> adopt(std::uint64_t connection_id, wire::Ipv4Address inside,
                                             wire::Ipv4Address outside, wire::Ipv4Address server,
                                             std::uint16_t inside_call_id, std::uint16_t outside_call_id);
  // GRE from the server: (server, public address, key) -> the call.
  const CallMapping* find_outside(wire::Ipv4Address server, wire::Ipv4Address outside,
                                  std::uint16_t outside_call_id) const;
  const CallMapping* find_inside(std::uint64_t connection_id, std::uint16_t inside_call_id) const;
  const CallMapping* find_outside_on_connection(std::uint64_t connection_id,
                                                std::uint16_t outside_call_id) const;
  void release(std::uint64_t connection_id, std::uint16_t inside_call_id);
  // The mapping goes (no GRE is routed by it) but its outside Call ID stays taken until
  // `until` (expire_held): the server may still send the ended call's GRE with it. Only
  // where may_hold(its client) said yes; else it is freed at once.
  void release_held(std::uint64_t connection_id, std::uint16_t inside_call_id, double until);
  // Whether one more outside Call ID of this client's may be held; a no is counted
  // (holds_unavailable): the caller keeps the old call and defers the reuse.
  bool may_hold(wire::Ipv4Address inside);
  void expire_held(double now);
  std::size_t held() const { return held_.size(); }
  // A call that idled out while its control connection lives: the server's call may be up
  // and send GRE with its outside Call ID at any time (s33 review). The mapping goes (no GRE
  // is routed by it); the outside Call ID stays taken until the connection ends
  // (release_connection) or the client maps its Call ID on that connection again (map_call,
  // confirm). Past kMaxParkedCallIdsPerClient, release_held(until) instead.
  void park(std::uint64_t connection_id, std::uint16_t inside_call_id, double until);
  std::size_t parked() const { return parked_.size(); }
  void release_connection(std::uint64_t connection_id);

  std::size_t size() const { return by_inside_.size(); }
  // Call IDs in use toward `server` from `outside` (for status and tests).
  std::size_t in_use(wire::Ipv4Address outside, wire::Ipv4Address server) const;
  // Whether that outside Call ID is taken toward `server` from `outside` (status and tests).
  bool outside_in_use(wire::Ipv4Address outside, wire::Ipv4Address server, std::uint16_t outside_call_id) const;
  const NatCounters& counters() const { return counters_; }

  // High availability (docs/ha.md): the outside Call IDs this node chooses are of its half
  // only, even for node 0 and odd for node 1, so that the two nodes of a pair (even both
  // active in a split brain) never give one outside Call ID to two calls. A client's Call
  // ID of the other half is translated. Given IDs (adopt) may be of either half. Empty:
  // every ID (no pair).
  void set_node_half(std::optional<std::uint8_t> node) { half_ = node; }
  // The reserve (kReservedCallIds, kFairShareCallIds); tests that fill a whole space from
  // few clients turn it off with 0.
  void set_reserve(std::size_t ids, std::uint32_t fair_share) {
    reserve_ = ids;
    fair_share_ = fair_share;
  }

 private:
  static std::uint64_t pair_key(std::uint32_t a, std::uint32_t b) { return (std::uint64_t{a} << 32) | b; }
  static std::uint64_t call_key(std::uint64_t connection_id, std::uint16_t call_id) {
    return (connection_id << 16) | call_id;
  }
  // Each mapping is kept once, in a pool (stable addresses: find_* hand out pointers), and
  // named in three flat indexes by its slot (4 bytes an entry, no node; issue 17).
  using Slot = std::uint32_t;  // pool index + 1; 0 is an empty index slot
  CallMapping& at(Slot s) { return mappings_[s - 1]; }
  const CallMapping& at(Slot s) const { return mappings_[s - 1]; }
  static std::size_t inside_hash(std::uint64_t connection_id, std::uint16_t call_id) {
    return mix_hash(call_key(connection_id, call_id));
  }
  static std::size_t outside_hash(std::uint32_t server, std::uint32_t outside, std::uint16_t call_id) {
    return mix_hash(pair_key(server, outside) ^ (std::uint64_t{call_id} * 0x9e3779b97f4a7c15ULL));
  }
  static std::size_t connection_outside_hash(std::uint64_t connection_id, std::uint16_t call_id) {
    return mix_hash(~call_key(connection_id, call_id));
  }
  Slot find_inside_slot(std::uint64_t connection_id, std::uint16_t inside_call_id) const;
  void erase(Slot s, bool keep_outside = false);
  void free_outside(std::uint64_t space_key, std::uint16_t outside_call_id);
  struct Space;
  const CallMapping* insert(Space& space, const CallMapping& m);
  // A free outside Call ID: `preferred` where free, else the next free from the cursor.
  std::optional<std::uint16_t> choose(Space& space, std::optional<std::uint16_t> preferred);
  struct Reservation {
    wire::Ipv4Address outside, server;
    std::uint16_t outside_call_id = 0;
    wire::Ipv4Address inside;  // the client: its share of the space
  };
  using Reservations = std::map<std::pair<std::uint64_t, std::uint32_t>, Reservation>;  // (connection, field sequence)
  Reservations::iterator unreserve(Reservations::iterator it);

  // Call IDs taken toward one server from one public address; a cursor spreads new ones.
  struct Space {
    std::bitset<kCallIdSpace> used;
    std::size_t count = 0;
    std::uint16_t cursor = 0;
    std::unordered_map<std::uint32_t, std::uint32_t> by_client;  // IDs each client holds (kFairShareCallIds)
  };
  // Whether `inside` may take one more ID of `space` (the reserve); a no is counted.
  bool within_share(Space& space, wire::Ipv4Address inside);
  static void count_client(Space& space, std::uint32_t inside, bool add);
  std::unordered_map<std::uint64_t, Space> spaces_;  // by (outside, server)
  std::deque<CallMapping> mappings_;  // the pool; a released slot waits in free_ for reuse
  std::vector<Slot> free_;
  FlatIndex<Slot> by_inside_;              // (connection, inside id)
  FlatIndex<Slot> by_outside_;             // (server, outside, outside id)
  FlatIndex<Slot> by_connection_outside_;  // (connection, outside id)
  Reservations reservations_;
  struct Held {
    std::uint64_t space_key;  // (outside, server)
    std::uint16_t outside_call_id;
    std::uint32_t inside;  // the client's address: its share of kMaxHeldCallIdsPerClient
    double until;
  };
  std::deque<Held> held_;  // release_held, in the order they end; at most kMaxHeldCallIds
  std::unordered_map<std::uint32_t, std::size_t> held_by_client_;
  struct Parked {
    std::uint64_t space_key;  // (outside, server)
    std::uint16_t outside_call_id;
    std::uint32_t inside;  // the client's address: its share of kMaxParkedCallIdsPerClient
  };
  std::map<std::pair<std::uint64_t, std::uint16_t>, Parked> parked_;  // by (connection, inside Call ID)
  std::unordered_map<std::uint32_t, std::size_t> parked_by_client_;
  void unpark(std::map<std::pair<std::uint64_t, std::uint16_t>, Parked>::iterator it);
  void unpark(std::uint64_t connection_id, std::uint16_t inside_call_id);
  NatCounters counters_;
  std::optional<std::uint8_t> half_;  // set_node_half
  std::size_t reserve_ = kReservedCallIds;
  std::uint32_t fair_share_ = kFairShareCallIds;
  std::optional<std::uint16_t> choose_in_half(Space& space);
};

}  // namespace pptp::nat
