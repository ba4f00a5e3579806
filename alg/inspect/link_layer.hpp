// Link-layer framing of captures: find the IPv4 packet inside a captured frame.
#pragma once

#include <optional>

#include "alg/core/bytes.hpp"

namespace pptp::inspect {

// Link types we read (LINKTYPE_ values as stored in pcap and pcapng files; 12 and 14 are
// DLT_RAW as some writers store it).
inline constexpr int kDltNull = 0;
inline constexpr int kDltEthernet = 1;
inline constexpr int kDltRaw = 12;
inline constexpr int kDltRawAlt = 14;
inline constexpr int kDltLoop = 108;
inline constexpr int kDltRawLinktype = 101;
inline constexpr int kDltLinuxSll = 113;
inline constexpr int kDltLinuxSll2 = 276;
inline constexpr int kLinktypeIpv4 = 228;

bool link_type_supported(int dlt);

// The IPv4 packet in a frame, or nullopt when the frame carries something else.
std::optional<Bytes> ipv4_in_frame(int dlt, Bytes frame);

}  // namespace pptp::inspect
