// Stream reassembly under arbitrary segments: bounded memory, and every message delivered is
// a message the parser accepts. Input: [u8 isn; bit 0: refuse when full, as the daemon runs
// it; bits 1-2: the start, a SYN, a plain mid-stream pick-up, or a taken-over direction
// resumed at a boundary (bits 3-7 place it) or with none, then [u8 n] and a replicated
// message head of n % 16 bytes at the stream's first byte (none if 0)] then records of [u16 sequence
// offset][u8 length][bytes]. Refusing, a full buffer never loses sync (only bytes that are no
// message do), and a refused segment changes nothing unless the sink left a message unread
// (the daemon's deferral: here every message at a sequence number = 1 mod 4), after which
// the stream ends just before it. Refusing also keeps what was read (keep_read), and each
// record's offset acknowledges it. A resumed direction skips no more segments than its
// bound and starts with a head at most once; a plain pick-up never resumes or skips.
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <vector>

#include "alg/stream/reassembler.hpp"

namespace {
struct Checker : pptp::stream::MessageSink {
  bool refusing = false;
  bool resuming = false;
  std::size_t skips = 0;
  std::size_t heads = 0;
  std::optional<std::uint32_t> left_unread;
  bool on_message(pptp::Bytes m, std::uint32_t sequence) override {
    if (!pptp::wire::parse_control_message(m)) std::abort();
    if (refusing && (sequence & 3) == 1) {
      left_unread = sequence;
      return false;
    }
    return true;
  }
  void on_stream_anomaly(pptp::stream::StreamAnomaly a, const pptp::wire::ParseError*) override {
    using pptp::stream::StreamAnomaly;
    if (refusing && a == StreamAnomaly::WindowExceeded) std::abort();
    if (a == StreamAnomaly::ResyncSkipped && ++skips > pptp::stream::kMaxResyncSegments + 1) std::abort();
    if (!resuming && (a == StreamAnomaly::ResyncSkipped || a == StreamAnomaly::ResumedAtPosition ||
                      a == StreamAnomaly::ResumedAtHead)) {
      std::abort();
    }
    if (a == StreamAnomaly::ResumedAtHead && ++heads > 1) std::abort();
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::stream;
  Reassembler r;
  Checker c;
  c.refusing = size > 0 && (data[0] & 1) != 0;
  r.refuse_when_full(c.refusing);
  r.keep_read(c.refusing);
  const std::uint32_t isn = size > 0 ? 0xfffff000u + data[0] : 0;  // exercise wrap-around
  const int start = size > 0 ? (data[0] >> 1) & 3 : 0;
  c.resuming = start >= 2;
  if (start == 0) r.on_syn(isn);
  if (start == 2) r.resume(isn + 1 + (std::uint32_t{data[0]} >> 3) * 64u);
  std::size_t pos = size > 0 ? 1 : 0;
  if (start == 3) {
    std::optional<ResumeHead> head;
    const std::size_t n = pos < size ? data[pos] % 16 : 0;
    pos = std::min(size, pos + 1);
    if (n > 0 && pos + n <= size) {
      head = ResumeHead{isn + 1, std::vector<std::uint8_t>(data + pos, data + pos + n)};
      pos += n;
    }
    r.resume(std::nullopt, head);
  }
  while (pos + 3 <= size) {
    const std::uint32_t offset = (std::uint32_t{data[pos]} << 8) | data[pos + 1];
    const std::size_t len = std::min<std::size_t>(data[pos + 2], size - pos - 3);
    const std::size_t buffered = r.buffered_bytes();
    const std::uint64_t delivered = r.delivered_bytes();
    const StreamState state = r.state();
    c.left_unread.reset();
    if (!r.feed(isn + 1 + offset, pptp::Bytes(data + pos + 3, len), c)) {
      if (!c.refusing) std::abort();
      if (c.left_unread ? r.next_sequence() != *c.left_unread
                        : r.buffered_bytes() != buffered || r.delivered_bytes() != delivered || r.state() != state) {
        std::abort();
      }
    }
    if (c.refusing) r.acknowledged(isn + 1 + offset);
    if (r.buffered_bytes() > 2 * kMaxPendingBytes + kMaxUnacknowledgedBytes + 2 * pptp::wire::kMaxControlMessageLength + 255) {
      std::abort();
    }
    pos += 3 + len;
  }
  return 0;
}
