#include "proxy/control_stream.hpp"

namespace pptp::proxy {

namespace {
struct Collect final : stream::MessageSink {
  std::vector<wire::ControlMessage>& out;
  std::optional<wire::ParseError>& error;
  Collect(std::vector<wire::ControlMessage>& o, std::optional<wire::ParseError>& e) : out(o), error(e) {}

  bool on_message(Bytes message, std::uint32_t) override {
    if (error) return true;
    auto parsed = wire::parse_control_message(message);
    if (parsed) {
      out.push_back(std::move(*parsed));
    } else {
      error = parsed.error();
    }
    return true;
  }
  void on_stream_anomaly(stream::StreamAnomaly, const wire::ParseError* e) override {
    if (!error) error = e != nullptr ? *e : wire::ParseError{};
  }
};
}  // namespace

bool ControlStream::feed(Bytes data, std::vector<wire::ControlMessage>& messages) {
  if (error_) return false;
  Collect sink(messages, error_);
  reassembler_.feed(offset_, data, sink);
  offset_ += static_cast<std::uint32_t>(data.size());
  return !error_ && reassembler_.state() != stream::StreamState::LostSync;
}

}  // namespace pptp::proxy
