// A control connection's live calls, in the order they were opened, and the index that
// finds them by Call ID (issue 17: a linear walk of up to kMaxCallsPerConnection calls for
// every call message cost 17 % of a set-up at 500 calls on a connection). The index is part
// of the list, not a second record: the list is the only way a call comes, is named and goes,
// so the two cannot disagree. A connection with few calls (most carry one) has no index: a
// walk of a few calls costs less than keeping it, in time and in memory per call.
//
// RFC 2637 names a call by the Call ID its PNS chose (2.7, 2.10) or by the one its PAC chose
// (2.8, 2.9); both are indexed. Two calls may carry the same Call ID (a peer reusing one:
// the tracker flags DuplicateCallId and keeps both); a find then answers the oldest call, as
// the walk in opening order did.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace pptp::track {

// From this many calls on a connection its calls are found through the index.
inline constexpr std::size_t kCallIndexFrom = 8;
// Calls a PAC placed (Incoming-Call-Request, RFC 2637 2.8) that the PNS has not answered, per
// control connection; past it no call opens. Unanswered, no budget or policy has judged them:
// a server placing 1,024 on each of a client's connections took 2.3 times the memory budget
// (s35 review F1). The transparent gateway cannot answer the server for the client, so the
// client's accepting reply to a call past the bound is refused, and its side of the
// connection with it: the bound is above what an honest server rings at once (8, as the
// proxy's, jammed a client whose server placed 12 calls, s36 review N1).
inline constexpr std::size_t kMaxUnansweredIncomingCalls = 16;

struct Call;
enum class CallOrigin : std::uint8_t;

class CallList {
 public:
  using Owned = std::unique_ptr<Call>;

  // Reading: the calls in opening order (each a const std::unique_ptr<Call>&).
  auto begin() const { return calls_.begin(); }
  auto end() const { return calls_.end(); }
  std::size_t size() const { return calls_.size(); }
  bool empty() const { return calls_.empty(); }
  const Owned& operator[](std::size_t i) const { return calls_[i]; }
  const Owned& at(std::size_t i) const { return calls_.at(i); }
  const Owned& back() const { return calls_.back(); }
  // Calls not closed: a closing call stays listed while the observer hears it (close()).
  std::size_t open_count() const { return calls_.size() - closing_; }
  bool indexed() const { return indexed_; }
  // Calls the PAC placed (RFC 2637 2.9) that the PNS has not answered: kept as the list
  // changes, so that a server's Incoming-Call-Request is judged without a walk of up to
  // kMaxCallsPerConnection calls (one segment cost 1,024 reads before).
  std::size_t unanswered_incoming() const { return unanswered_incoming_; }

  // The tracker's changes; each keeps the index true.
  Call& add(Owned call);
  void name_pns_call_id(Call& call, std::uint16_t id);
  void name_pac_call_id(Call& call, std::uint16_t id);
  void close(Call& call);   // marks it closed (CallState::Closed), still listed
  void remove(Call& call);  // a closed call leaves the list

  Call* find_by_pns_call_id(std::uint16_t id) const;
  Call* find_by_pns_call_id(std::uint16_t id, CallOrigin origin) const;
  Call* find_by_pac_call_id(std::uint16_t id) const;

 private:
  // Per side, the calls that carry a Call ID on it, sorted by that Call ID (equal ones in the
  // order they were named), both sides in one vector, the PNS's first: 8 bytes a name, no
  // node per entry, one vector's header per connection (memory per call, issue 17). The key
  // is read from the call itself, which only this list names (name_*_call_id).
  enum class Side : std::uint8_t { Pns, Pac };
  using Entries = std::vector<Call*>;
  static const std::optional<std::uint16_t>& named(Side side, const Call& call);
  // One side's part of index_, as iterators.
  std::pair<Entries::iterator, Entries::iterator> part(Side side);
  std::pair<Entries::const_iterator, Entries::const_iterator> part(Side side) const;
  static bool unanswered(const Call& call);
  void build_index();
  void index(Side side, Call& call);
  void unindex(Side side, const Call& call);
  template <class Accept>
  Call* oldest(Side side, std::uint16_t id, Accept&& accept) const;

  std::vector<Owned> calls_;
  Entries index_;               // empty while the list is short (!indexed_)
  std::uint32_t pac_from_ = 0;  // where the PAC side's part of index_ starts
  std::uint32_t closing_ = 0;
  std::uint32_t unanswered_incoming_ = 0;
  bool indexed_ = false;
};

}  // namespace pptp::track
