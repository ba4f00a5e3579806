// Control-message parser: never reads out of bounds; what parses serializes to the same bytes.
#include <cstdlib>

#include "alg/wire/control_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::wire;
  const pptp::Bytes input(data, size);
  const Frame f = frame_control_message(input);
  auto m = parse_control_message(input);
  if (m.has_value() != (f.status == Frame::Status::Complete)) std::abort();
  if (m) {
    const auto out = serialize(*m);
    if (out.size() != f.length || !std::equal(out.begin(), out.end(), data)) std::abort();
    (void)m->call_id();
    (void)m->peer_call_id();
  } else {
    (void)describe(m.error());
  }
  return 0;
}
