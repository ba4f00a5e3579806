// The gateway's own state beside the tracker's: one record per control connection and one
// per call, each in one struct (keyed by the tracker's ids).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/budgets.hpp"
#include "gateway/pac_call_ids.hpp"
#include "gateway/segment_hold.hpp"
#include "gateway/types.hpp"
#include "nat/rewrite.hpp"
#include "policy/admission.hpp"

namespace pptp::gateway {

// Per-direction arrays are indexed by track::Direction.
inline std::size_t index_of(track::Direction d) { return static_cast<std::size_t>(d); }

// One direction's Call-ID patches (nat::StreamPatches, 280 bytes), allocated at the first
// patch: most connections never have a Call ID translated (issue 17, memory per call).
class LazyPatches {
 public:
  const nat::StreamPatches& view() const { return patches_ ? *patches_ : none(); }
  nat::StreamPatches& edit() {
    if (!patches_) patches_ = std::make_unique<nat::StreamPatches>();
    return *patches_;
  }
  std::size_t size() const { return patches_ ? patches_->size() : 0; }

 private:
  static const nat::StreamPatches& none() {
    static const nat::StreamPatches empty;
    return empty;
  }
  std::unique_ptr<nat::StreamPatches> patches_;
};

// What ends calls taken over: one of them by the client's own Call ID, or all of the
// connection's (Stop-Control-Connection-Request, RFC 2637 2.4, or the connection's end).
struct TakenOverEnd {
  std::optional<std::uint16_t> pns_call_id;  // empty: all of the connection's
};

// An end of a taken-over call (its Call-Disconnect-Notify, a Stop-Control-Connection-Request)
// read before the connection's window was proven both ways, waiting for the message's
// receiver to acknowledge it (docs/ha.md, "After the promotion").
struct UnprovenEnd {
  TakenOverEnd end;
  std::string_view reason;   // the message's key (a static table's)
  std::size_t receiver = 0;  // track::Direction index of the side that must acknowledge it
  std::uint32_t through = 0; // the sequence number after the message
};
inline constexpr std::size_t kMaxUnprovenEnds = 8;  // per connection; a client has a few calls
// How far past a held end's message the receiver's acknowledgment may be for it to take
// the end (what a receiver acknowledges promptly; a pick-up's range can span 2^31).
inline constexpr std::uint32_t kUnprovenEndAckSpan = 65535;

// A server Call ID held past its call's end, until its connection ends (release_pac_call_id).
struct ParkedPacCallId {
  PacCallKey key;
  std::uint64_t call_id = 0;
};

struct ConnectionRecord {
  wire::Ipv4Address outside;
  bool outside_known = false;                   // from conntrack; until then the PNS's own address
  std::array<LazyPatches, 2> patches;           // by track::Direction
  std::array<SegmentHold, 2> held;              // by track::Direction
  std::optional<std::uint32_t> refused_sequence;  // the first call set-up we refused
  std::optional<double> closed_at;
  std::unique_ptr<policy::Charge> charge;       // what it holds of the policy's limits, under one
  bool desynced = false;                        // a stream lost sync: closed, its data dropped
  bool killed = false;                          // ended by the operator (control_api.hpp)
  std::vector<ParkedPacCallId> parked_pac_call_ids;  // its ended calls' server Call IDs
  // Its calls the server gave a Call ID another call of it holds (one entry each, released by
  // the holder: Gateway::hand_over_pac_call_id).
  std::uint16_t pac_call_id_sharers = 0;
  // A Call-Clear-Request's Call ID decided from its first byte alone (call_id_fields.cpp):
  // the sequence number of that field, until its second byte decides the rest.
  std::optional<std::uint32_t> first_byte_field;
  BudgetShare budget;                           // what it holds of the budgets (budgets.hpp)
  // Ends of taken-over calls read before the window was proven (taken_over.cpp), each
  // until the message's receiver acknowledges it; at most kMaxUnprovenEnds.
  std::vector<UnprovenEnd> unproven_ends;
  // The last message head handed to the HA node per direction (call_id_fields.cpp): a copy
  // of its segment (a retransmission, a replay) hands nothing over again.
  struct HeadPassed {
    std::uint32_t sequence = 0;
    std::uint8_t length = 0;  // 0: none yet
  };
  std::array<HeadPassed, 2> head_passed;
};

// The Call ID field of the message at the end of a direction's stream, not yet whole: its
// translation is decided as soon as its bytes allow (docs/packet-path.md, "Held segments").
struct PartialField {
  bool undecided = false;      // some of its bytes are in, its rewrite is not known yet
  std::uint32_t sequence = 0;  // of its first byte
};

// What becomes of a control segment with data (hold_or_patch).
enum class SegmentFate : std::uint8_t {
  Forward,        // every Call ID byte in it is decided: it goes with the patches
  Hold,           // it carries part of an undecided field
  DropUnframed,   // ahead of a gap: where its fields lie is not known yet (TCP sends it again)
  DropPatchLost,  // it may carry a field whose patch the bound pushed out
};
SegmentFate segment_fate(const stream::Reassembler& s, const nat::StreamPatches& patches, const nat::TcpPayload& at,
                         const PartialField& field);

// A call's standing with the policy, from its set-up on.
struct CallPolicy {
  policy::Outcome outcome = policy::Outcome::Allow;
  std::string rule;
  policy::Charge charge;
};

// A call whose GRE the kernel forwards.
struct Offload {
  OffloadedCall call;
  wire::Endpoint pns, pac;
  std::uint16_t pns_call_id = 0;
  std::uint64_t to_client_seen = 0, to_server_seen = 0;  // the kernel's counters, last read
  double armed_at = 0;  // its elements last added or re-armed (Offloader::due_for_rearm)
};

struct CallRecord {
  // Under a policy only: allocated when the policy admits the call (issue 17, memory per call).
  std::unique_ptr<CallPolicy> policy;
  std::optional<Offload> offload;    // while the kernel forwards its GRE
  std::uint8_t logged = 0;           // which lifecycle lines were written (kLogged*)
  // The name the PAC accepted that was last logged and judged: a re-authentication under
  // another name is judged again (issue "Integrity").
  std::optional<std::string> judged_user;
  std::optional<wire::Ipv4Address> budget_source;  // the source whose call budget it holds
  std::optional<PacCallKey> pac_call_key;          // the server Call ID it holds (pac_call_ids.hpp)
};
inline constexpr std::uint8_t kLoggedEstablished = 1, kLoggedVerdict = 4;

}  // namespace pptp::gateway
