// The PPP authentication follower fed a stream of frames in both directions. Input: records
// of [direction bit | length] [length octets of PPP frame]. Checks what the follower promises:
// an accepted name was claimed before, by the client, with the same Identifier; only the
// server's frames bring verdicts; every anomaly has a name.
#include <cstdlib>
#include <set>
#include <string>
#include <utility>

#include "alg/track/auth_follower.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::track;
  AuthFollower follower;
  std::set<std::pair<std::string, std::uint8_t>> claimed;
  std::size_t pos = 0;
  while (pos + 1 < size) {
    const Direction dir = (data[pos] & 0x80) != 0 ? Direction::PacToPns : Direction::PnsToPac;
    const std::size_t length = std::min<std::size_t>(data[pos] & 0x7f, size - pos - 1);
    const pptp::Bytes bytes(data + pos + 1, length);
    pos += 1 + length;
    auto frame = pptp::wire::parse_ppp_frame(bytes);
    if (!frame) continue;
    const AuthStep step = follower.on_frame(dir, *frame);
    if (step.frame_class != classify(*frame)) std::abort();
    const AuthEvent& e = step.event;
    if ((e.kind == AuthEventKind::Anomaly) != e.anomaly.has_value()) std::abort();
    if (e.name && e.name->name.size() > pptp::wire::kMaxAuthNameLength) std::abort();
    switch (e.kind) {
      case AuthEventKind::Claim:
        if (!e.name || dir != Direction::PnsToPac || e.name->sent != dir) std::abort();
        claimed.emplace(e.name->name, e.name->identifier);
        break;
      case AuthEventKind::Accepted:
      case AuthEventKind::Rejected:
        if (!e.name || dir != Direction::PacToPns || e.name->sent != Direction::PnsToPac) std::abort();
        if (claimed.count({e.name->name, e.name->identifier}) == 0) std::abort();
        break;
      default:
        break;
    }
  }
  return 0;
}
