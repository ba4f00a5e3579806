// The words log lines use for connections and calls (key=value, grep-able).
#pragma once

#include <optional>
#include <string>

#include <spdlog/fmt/fmt.h>

#include "alg/core/bytes.hpp"
#include "alg/track/tracker.hpp"

namespace pptp::gateway {

inline std::string describe(const track::ControlConnection& c) {
  return fmt::format("connection={} pns={} pac={}", c.id, wire::to_string(c.pns), wire::to_string(c.pac));
}

inline std::string call_ids(const track::Call& call) {
  const auto id = [](const std::optional<std::uint16_t>& v) { return v ? std::to_string(*v) : std::string("-"); };
  return fmt::format("call={} pns_call_id={} pac_call_id={}", call.id, id(call.pns_call_id), id(call.pac_call_id));
}

// A PPP name as it may be logged: non-printable bytes escaped.
inline std::string printable_name(const std::string& name) {
  return printable(Bytes(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()));
}

}  // namespace pptp::gateway
