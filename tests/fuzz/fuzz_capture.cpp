// pcap/pcapng reader and link-layer decoding on arbitrary files.
#include "alg/inspect/capture_file.hpp"
#include "alg/inspect/link_layer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pptp::inspect;
  CaptureParser p(pptp::Bytes(data, size));
  for (int i = 0; i < 4096; ++i) {
    auto r = p.next();
    if (!r || !r->has_value()) break;
    if (link_type_supported((*r)->link_type)) (void)ipv4_in_frame((*r)->link_type, (*r)->data);
  }
  return 0;
}
