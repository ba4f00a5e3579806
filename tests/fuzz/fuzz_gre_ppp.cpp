// GRE header, PPP frame and PPP authentication parsers; GRE rebuilds to the same bytes.
#include <cstdlib>

#include "alg/wire/gre.hpp"
#include "alg/wire/ppp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::wire;
  const pptp::Bytes input(data, size);
  auto g = parse_gre(input);
  pptp::Bytes ppp_bytes = input;
  if (g) {
    std::vector<std::uint8_t> out;
    build_gre(g->header, g->payload, out);
    const std::size_t used = size - g->trailing;
    if (out.size() != used || !std::equal(out.begin(), out.end(), data)) std::abort();
    ppp_bytes = g->payload;
  } else {
    (void)describe(g.error());
  }
  auto f = parse_ppp_frame(ppp_bytes);
  if (!f) return 0;
  auto id = find_auth_identity(*f);
  if (id && id->has_value() && (*id)->name.size() > kMaxAuthNameLength) std::abort();
  (void)find_auth_outcome(*f);
  return 0;
}
