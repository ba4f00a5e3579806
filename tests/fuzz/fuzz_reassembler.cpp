// Stream reassembly under arbitrary segments: bounded memory, and every message delivered is
// a message the parser accepts. Input: records of [u16 sequence offset][u8 length][bytes].
#include <cstdlib>

#include "alg/stream/reassembler.hpp"

namespace {
struct Checker : pptp::stream::MessageSink {
  void on_message(pptp::Bytes m, std::uint32_t) override {
    if (!pptp::wire::parse_control_message(m)) std::abort();
  }
  void on_stream_anomaly(pptp::stream::StreamAnomaly, const pptp::wire::ParseError*) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::stream;
  Reassembler r;
  Checker c;
  const std::uint32_t isn = size > 0 ? 0xfffff000u + data[0] : 0;  // exercise wrap-around
  r.on_syn(isn);
  std::size_t pos = size > 0 ? 1 : 0;
  while (pos + 3 <= size) {
    const std::uint32_t offset = (std::uint32_t{data[pos]} << 8) | data[pos + 1];
    const std::size_t len = std::min<std::size_t>(data[pos + 2], size - pos - 3);
    r.feed(isn + 1 + offset, pptp::Bytes(data + pos + 3, len), c);
    if (r.buffered_bytes() > kMaxPendingBytes + 2 * pptp::wire::kMaxControlMessageLength + 255) std::abort();
    pos += 3 + len;
  }
  return 0;
}
