// The HA sync codec: whole datagrams under a fixed key (refused, never crashing), and bodies
// of every type without the tag (the fuzzer cannot forge one): whatever decodes encodes back
// to the same bytes, and a signed message decodes to itself.
#include <cstdlib>
#include <vector>

#include "sync/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::sync;
  static const std::vector<std::uint8_t> key(32, 0x42);
  const pptp::Bytes input(data, size);
  (void)decode(input, key);
  if (size == 0) return 0;
  const auto type = static_cast<MessageType>(data[0] % 8);
  auto body = decode_body(type, input.subspan(1));
  if (!body) {
    (void)name_of(body.error());
    return 0;
  }
  std::vector<std::uint8_t> again;
  encode_body(*body, again);
  if (again.size() != size - 1 || !std::equal(again.begin(), again.end(), data + 1)) std::abort();
  const Message m{Header{0, 1, 2, 3, 4}, *body};
  std::vector<std::uint8_t> signed_bytes;
  if (!encode(m, key, signed_bytes)) std::abort();
  auto back = decode(signed_bytes, key);
  if (!back || !(*back == m)) std::abort();
  return 0;
}
