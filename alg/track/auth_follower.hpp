// Follows one call's PPP authentication in both directions and says which name the server
// (the PAC) accepted: PAP (RFC 1334), CHAP (RFC 1994) with MS-CHAP (RFC 2433) and MS-CHAPv2
// (RFC 2759), EAP (RFC 3748). A name counts only when the server's Ack or Success answers the
// very request that carried it, matched by the PPP Identifier; a name nobody answered is a
// claim. Pure: fed decoded PPP frames with their direction, it keeps the open exchanges (a few
// octets each, bounded) and returns what each frame means.
//
// Roles: the PNS (client) authenticates itself to the PAC (server), as pptp-linux, Windows
// and Poptop do. A name sent by the PAC, or a verdict sent by the PNS, is a wrong-side
// anomaly and counts for nothing.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "alg/track/anomaly.hpp"
#include "alg/track/direction.hpp"
#include "alg/wire/ppp.hpp"

namespace pptp::track {

// PAP requests a client may have outstanding at once (it retransmits with a new Identifier,
// RFC 1334 2.2.1); the oldest is forgotten past this.
inline constexpr std::size_t kMaxPendingPapRequests = 4;
// RFC 1989 Link Quality Report: allowed in the Authentication phase (RFC 1661 3.5).
inline constexpr std::uint16_t kPppLqr = 0xC025;

// What a frame is, for "only link control and authentication pass until the user is
// decided". RFC 1661 3.5: during the Authentication phase only LCP, authentication protocol
// and link quality monitoring packets are allowed; everything else (IPCP, CCP, IP, MPPE
// data 0x00FD, ...) belongs to the Network-Layer Protocol phase (3.6).
enum class PppFrameClass : std::uint8_t { LinkControl, Authentication, NetworkLayer };
std::string_view name_of(PppFrameClass c);
PppFrameClass classify(const wire::PppFrame& frame);

// A name seen in an authentication exchange, and where.
struct AuthName {
  std::string name;  // raw bytes from the wire; render with printable()
  wire::AuthMethod method = wire::AuthMethod::Pap;
  Direction sent = Direction::PnsToPac;  // which way the name travelled
  std::uint8_t identifier = 0;           // the PPP Identifier of its exchange
  bool operator==(const AuthName&) const = default;
};

enum class AuthEventKind : std::uint8_t {
  None,
  Claim,     // a name answered an open request; the server has not judged it yet
  Accepted,  // the server's Ack/Success answered the request carrying `name`
  Rejected,  // the server's Nak/Failure answered it
  Anomaly,   // see `anomaly`; `name` is set when the frame carried one
};
std::string_view name_of(AuthEventKind k);

struct AuthEvent {
  AuthEventKind kind = AuthEventKind::None;
  std::optional<AuthName> name;
  std::optional<Anomaly> anomaly;
  std::string detail;  // for anomalies
};

// The result of one frame.
struct AuthStep {
  PppFrameClass frame_class = PppFrameClass::NetworkLayer;
  AuthEvent event;
};

class AuthFollower {
 public:
  AuthFollower() = default;
  // A call's follower made again after forget() (CallAuth): whether the server had Acked a
  // PAP request in this link establishment, so that its unchecked Acks to later requests are
  // credited to no name (s38 policy review F1).
  explicit AuthFollower(bool pap_done) : pap_done_(pap_done) {}
  AuthStep on_frame(Direction dir, const wire::PppFrame& frame);
  bool pap_done() const { return pap_done_; }

 private:
  struct Pending {  // a name answering an open request, awaiting the server's verdict
    AuthName name;
    bool conflicting = false;  // another name answered the same Identifier
  };
  struct EapExchange {  // from the server's Request/Identity to its Success or Failure
    std::optional<std::uint8_t> request;       // Identifier of the open Request
    bool request_is_identity = false;
    std::optional<std::uint8_t> answered;      // Identifier of the latest Response to it
    std::optional<Pending> identity;
  };

  AuthEvent on_lcp(Direction dir, const wire::PppFrame& frame);
  AuthEvent on_pap(Direction dir, const wire::AuthPacket& p);
  void end_pap();
  bool evicted_name_alone(std::uint8_t identifier) const;
  AuthEvent on_chap(Direction dir, const wire::AuthPacket& p);
  AuthEvent on_eap(Direction dir, const wire::AuthPacket& p);
  static AuthEvent verdict(Pending pending, bool success, std::uint8_t identifier);
  static AuthEvent record(std::optional<Pending>& slot, AuthName name);

  std::array<std::optional<Pending>, kMaxPendingPapRequests> pap_{};
  std::size_t pap_next_ = 0;
  // The server Acked a PAP request in this link establishment (any Ack: matched, ambiguous
  // or unmatched): pppd then Acks every later request unchecked (RFC 1334 2.2.1), so no later
  // name counts. `pap_acked_`: the name that first Ack accepted, none when it was ambiguous
  // (two names under one Identifier, an Ack of a request not followed) or not known here.
  bool pap_done_ = false;
  std::optional<std::string> pap_acked_;
  // The first request pushed out of the pending slots, and whether any pushed out since
  // named another user (or was ambiguous).
  std::optional<AuthName> pap_evicted_;
  std::bitset<256> pap_evicted_ids_;  // their Identifiers: only an Ack of one of them is credited
  bool pap_evicted_mixed_ = false;
  std::optional<std::uint8_t> chap_challenge_;
  std::optional<Pending> chap_response_;
  EapExchange eap_;
};

// A call's AuthFollower (400 bytes), made at its first PPP frame. A call whose GRE the
// kernel forwards shows no frames: the gateway lets its follower go then (forget()), and a
// call that comes back through the queue starts a new one (issue 17, memory per call).
class CallAuth {
 public:
  CallAuth() = default;
  CallAuth(CallAuth&&) noexcept = default;
  CallAuth& operator=(CallAuth&&) noexcept = default;
  // A copy (a call's snapshot: the proxy's and the sync's) follows from the same state.
  CallAuth(const CallAuth& other)
      : follower_(other.follower_ ? std::make_unique<AuthFollower>(*other.follower_) : nullptr),
        pap_done_(other.pap_done_) {}
  CallAuth& operator=(const CallAuth& other) {
    if (this != &other) {
      follower_ = other.follower_ ? std::make_unique<AuthFollower>(*other.follower_) : nullptr;
      pap_done_ = other.pap_done_;
    }
    return *this;
  }
  AuthStep on_frame(Direction dir, const wire::PppFrame& frame) {
    if (!follower_) follower_ = std::make_unique<AuthFollower>(pap_done_);
    return follower_->on_frame(dir, frame);
  }
  // The open exchanges go; that the server's PAP already succeeded stays (s38 policy review
  // F1: a new follower credited pppd's unchecked Ack to a request naming another user, on an
  // offloaded call whose PAP frames still come here).
  void forget() {
    if (follower_) pap_done_ = follower_->pap_done();
    follower_.reset();
  }
  bool following() const { return follower_ != nullptr; }

 private:
  std::unique_ptr<AuthFollower> follower_;
  bool pap_done_ = false;  // of the follower forgotten last
};

}  // namespace pptp::track
