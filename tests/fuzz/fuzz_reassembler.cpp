// Stream reassembly under arbitrary segments: bounded memory, and every message delivered is
// a message the parser accepts. Input: [u8 isn; bit 0: refuse when full, as the daemon runs
// it] then records of [u16 sequence offset][u8 length][bytes]. Refusing, a full buffer never
// loses sync (only bytes that are no message do), and a refused segment changes nothing.
#include <cstdlib>

#include "alg/stream/reassembler.hpp"

namespace {
struct Checker : pptp::stream::MessageSink {
  bool refusing = false;
  void on_message(pptp::Bytes m, std::uint32_t) override {
    if (!pptp::wire::parse_control_message(m)) std::abort();
  }
  void on_stream_anomaly(pptp::stream::StreamAnomaly a, const pptp::wire::ParseError*) override {
    if (refusing && a == pptp::stream::StreamAnomaly::WindowExceeded) std::abort();
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::stream;
  Reassembler r;
  Checker c;
  c.refusing = size > 0 && (data[0] & 1) != 0;
  r.refuse_when_full(c.refusing);
  const std::uint32_t isn = size > 0 ? 0xfffff000u + data[0] : 0;  // exercise wrap-around
  r.on_syn(isn);
  std::size_t pos = size > 0 ? 1 : 0;
  while (pos + 3 <= size) {
    const std::uint32_t offset = (std::uint32_t{data[pos]} << 8) | data[pos + 1];
    const std::size_t len = std::min<std::size_t>(data[pos + 2], size - pos - 3);
    const std::size_t buffered = r.buffered_bytes();
    const std::uint64_t delivered = r.delivered_bytes();
    const StreamState state = r.state();
    if (!r.feed(isn + 1 + offset, pptp::Bytes(data + pos + 3, len), c)) {
      if (!c.refusing || r.buffered_bytes() != buffered || r.delivered_bytes() != delivered || r.state() != state) {
        std::abort();
      }
    }
    if (r.buffered_bytes() > kMaxPendingBytes + 2 * pptp::wire::kMaxControlMessageLength + 255) std::abort();
    pos += 3 + len;
  }
  return 0;
}
