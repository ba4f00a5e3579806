// Which way a packet of a control connection or call travels.
#pragma once

#include <cstdint>
#include <string_view>

namespace pptp::track {

enum class Direction : std::uint8_t { PnsToPac = 0, PacToPns = 1 };
std::string_view name_of(Direction d);
inline Direction reverse(Direction d) {
  return d == Direction::PnsToPac ? Direction::PacToPns : Direction::PnsToPac;
}

}  // namespace pptp::track
