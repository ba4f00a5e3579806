// What the reassembler's tests share: a sink that records what it is told, and a PNS's side
// of a control connection.
#pragma once

#include <algorithm>
#include <optional>
#include <vector>

#include "alg/stream/reassembler.hpp"
#include "tests/support/packets.hpp"

namespace pptp::stream::test {

using pptp::test::bytes_of;

using Message = std::vector<std::uint8_t>;

struct Collector : MessageSink {
  std::vector<Message> messages;
  std::vector<StreamAnomaly> anomalies;
  std::optional<wire::ParseError> error;
  bool on_message(Bytes m, std::uint32_t seq) override {
    messages.emplace_back(m.begin(), m.end());
    sequences.push_back(seq);
    return true;
  }
  std::vector<std::uint32_t> sequences;
  void on_stream_anomaly(StreamAnomaly a, const wire::ParseError* e) override {
    anomalies.push_back(a);
    if (e != nullptr) error = *e;
  }
  std::size_t count(StreamAnomaly a) const { return std::count(anomalies.begin(), anomalies.end(), a); }
};

// A PNS's side of a control connection: every kind of message it sends, 380 bytes.
inline std::vector<Message> pns_messages() {
  wire::OutgoingCallRequest ocrq;
  ocrq.call_id = 7;
  ocrq.phone_number = wire::Text64::from_text("555");
  return {bytes_of(wire::StartControlConnectionRequest{}), bytes_of(ocrq),
          bytes_of(wire::EchoRequest{99}), bytes_of(wire::SetLinkInfo{}),
          bytes_of(wire::CallClearRequest{7, 0})};
}

inline Message joined(const std::vector<Message>& ms) {
  Message s;
  for (const auto& m : ms) s.insert(s.end(), m.begin(), m.end());
  return s;
}

}  // namespace pptp::stream::test
