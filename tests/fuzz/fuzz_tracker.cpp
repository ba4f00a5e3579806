// The whole packet path (IPv4, TCP/1723 reassembly, tracking, GRE matching, PPP) on arbitrary
// packets. Input: records of [u16 length][IPv4 packet]. Bounded state, no crash.
#include <cstdlib>

#include "alg/track/packet_path.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::track;
  TrackerObserver observer;
  Tracker tracker(observer);
  double time = 0;
  std::size_t pos = 0;
  for (int n = 0; n < 256 && pos + 2 <= size; ++n) {
    const std::size_t len = std::min<std::size_t>((std::size_t{data[pos]} << 8) | data[pos + 1], size - pos - 2);
    handle_ipv4(tracker, time += 1, pptp::Bytes(data + pos + 2, len));
    pos += 2 + len;
  }
  tracker.expire(time + 10000);
  if (tracker.call_count() != 0) std::abort();  // everything expires
  return 0;
}
