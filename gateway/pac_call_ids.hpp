// The Call IDs servers gave calls (RFC 2637 2.8, 2.9), per server and public address. The
// server tells the GRE of its calls apart by the sender's address and this Call ID (4.1);
// behind one public address two clients' calls with one server Call ID are one call to it.
// Servers are expected to keep their Call IDs unique, but Poptop's pptpd gives each control
// connection a range of 128 and lets a connection's calls run into the next range: an
// inside host with 129 calls got the Call ID of another client's call, and one GRE packet
// of its own ended that client's tunnel at the server (s35 review F0). Of two control
// connections whose calls the server gave one Call ID, one that ran past its range loses
// (holder_ran_past_its_range); otherwise the later call does.
#pragma once

#include <cstdint>
#include <cstddef>
#include <unordered_map>

#include "alg/core/flat_index.hpp"

namespace pptp::track {
struct ControlConnection;
}

namespace pptp::gateway {

// Poptop's range of Call IDs a control connection (MAX_CALLS_PER_TCP_LINK): pptpd adds it to
// the next connection's first Call ID at each connection it accepts (wrapping after 512
// connections, which one client can open), and gives a connection's calls that first ID plus
// the number of Outgoing-Call-Requests it answered on it before. A call preceded by this many
// requests on its connection got a Call ID past its connection's range.
inline constexpr std::uint32_t kCallsInAServerRange = 128;

// Of two control connections whose calls a server gave one Call ID, whether the holder's
// call is the one that ran past its connection's range (`ordinal`: the requests before it on
// its connection, track::Call::ordinal) while the new call lies within its own: the holder's
// connection is cut and the new call keeps the ID. Otherwise the new call is refused: a wrap
// of pptpd's ranges, or a server of another numbering, gives a new connection's call the
// Call ID of a call within its own range (s37 review F1: with "more calls than the other",
// one client could get another's connection cut). Both modes decide by this
// (Gateway::may_name_pac_call_id, proxy Relay::server_call_id_claim).
inline bool holder_ran_past_its_range(std::uint32_t holder_ordinal, std::uint32_t new_ordinal) {
  return holder_ordinal >= kCallsInAServerRange && new_ordinal < kCallsInAServerRange;
}

// A refused call's Outgoing-Call-Reply as the client gets it (RFC 2637 2.8): its Result Code
// (byte 16) and Error Code (byte 17) become General Error (2) and No-Resource (4).
inline constexpr std::uint32_t kReplyResultCodeOffset = 16;
inline constexpr std::uint16_t kReplyGeneralErrorNoResource = (2 << 8) | 4;

struct PacCallKey {
  std::uint32_t server = 0;   // the PAC's address
  std::uint32_t outside = 0;  // the public address the server sees the client's calls from
  std::uint16_t call_id = 0;  // the PAC's Call ID
  bool operator==(const PacCallKey&) const = default;
};

struct PacCallKeyHash {
  std::size_t operator()(const PacCallKey& k) const {
    return mix_hash((std::uint64_t{k.server} << 32 | k.outside) ^ (std::uint64_t{k.call_id} * 0x9e3779b97f4a7c15ULL));
  }
};

// The call holding a server Call ID: the tracker's call id, and its connection, which lives
// as long as it holds the ID (released when its calls end, or at its close when parked).
struct PacCallHolder {
  std::uint64_t call_id = 0;
  const track::ControlConnection* connection = nullptr;
  std::uint32_t ordinal = 0;  // the call's track::Call::ordinal (holder_ran_past_its_range)
};

// One holder per key; `Holder` names its call by `call_id`. The proxy keeps its server legs'
// Call IDs here too (proxy/call_book.hpp): one registry, one rule for who gives an ID back.
template <class Holder = PacCallHolder>
class PacCallIds {
 public:
  const Holder* holder(const PacCallKey& k) const {
    const auto it = held_.find(k);
    return it != held_.end() ? &it->second : nullptr;
  }
  void hold(const PacCallKey& k, Holder h) { held_.insert_or_assign(k, h); }
  // Only the call that holds it gives it back (a call that lost it to an earlier one does not).
  void release(const PacCallKey& k, decltype(Holder::call_id) call_id) {
    const auto it = held_.find(k);
    if (it != held_.end() && it->second.call_id == call_id) held_.erase(it);
  }

 private:
  std::unordered_map<PacCallKey, Holder, PacCallKeyHash> held_;
};

}  // namespace pptp::gateway
