// Helpers shared by the tracker's source files (tracker.cpp, tracker_messages.cpp,
// tracker_gre.cpp). Not part of the tracker's interface.
#pragma once

#include <cstdio>
#include <string>

#include "alg/track/tracker.hpp"

namespace pptp::track::detail {

inline std::size_t index_of(Direction d) { return static_cast<std::size_t>(d); }

inline std::string fmt(const char* format, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

}  // namespace pptp::track::detail
