// One direction of a relayed control connection, from socket bytes to parsed messages
// (RFC 2637 section 2), framed by alg/stream's Reassembler (a socket's bytes are in order,
// so it is fed a running offset as its sequence number) and parsed by alg/wire.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "alg/core/bytes.hpp"
#include "alg/stream/reassembler.hpp"
#include "alg/wire/control_message.hpp"

namespace pptp::proxy {

class ControlStream {
 public:
  ControlStream() { reassembler_.on_syn(0); }
  // Appends what arrived to `messages`. False once the stream is broken (a framing or parse
  // error): nothing more is read from it, the caller ends the connection.
  bool feed(Bytes data, std::vector<wire::ControlMessage>& messages);
  const std::optional<wire::ParseError>& error() const { return error_; }

 private:
  stream::Reassembler reassembler_;
  std::uint32_t offset_ = 1;  // the byte after the "SYN" at 0
  std::optional<wire::ParseError> error_;
};

}  // namespace pptp::proxy
