// The words log lines use for connections and calls (key=value, grep-able).
#pragma once

#include <optional>
#include <string>

#include <spdlog/fmt/fmt.h>

#include "alg/core/bytes.hpp"
#include "alg/track/tracker.hpp"

namespace pptp::gateway {

// What describe() and call_ids() give: the words, written straight into the line when the
// line is written. A line at a level that is off formats nothing (spdlog checks the level
// before formatting its arguments), and one that is on builds no string per word: the
// lifecycle lines of a set-up were 15 % of its instructions (issue 17).
struct ConnectionWords {
  const track::ControlConnection& c;
};
struct CallWords {
  const track::Call& call;
};
// An optional Call ID as a word: the number or "-".
struct CallIdWord {
  std::optional<std::uint16_t> id;
};

// "a.b.c.d:port" without snprintf or a string (wire::to_string's text).
inline auto format_endpoint(const wire::Endpoint& e, fmt::format_context& ctx) {
  const std::uint32_t a = e.address.value;
  return fmt::format_to(ctx.out(), "{}.{}.{}.{}:{}", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff, e.port);
}

inline ConnectionWords describe(const track::ControlConnection& c) { return {c}; }
inline CallWords call_ids(const track::Call& call) { return {call}; }

// A PPP name as it may be logged: non-printable bytes escaped.
inline std::string printable_name(const std::string& name) {
  return printable(Bytes(reinterpret_cast<const std::uint8_t*>(name.data()), name.size()));
}

}  // namespace pptp::gateway

template <>
struct fmt::formatter<pptp::gateway::CallIdWord> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const pptp::gateway::CallIdWord& w, fmt::format_context& ctx) const {
    return w.id ? fmt::format_to(ctx.out(), "{}", *w.id) : fmt::format_to(ctx.out(), "-");
  }
};

template <>
struct fmt::formatter<pptp::gateway::ConnectionWords> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const pptp::gateway::ConnectionWords& w, fmt::format_context& ctx) const {
    fmt::format_to(ctx.out(), "connection={} pns=", w.c.id);
    pptp::gateway::format_endpoint(w.c.pns, ctx);
    fmt::format_to(ctx.out(), " pac=");
    return pptp::gateway::format_endpoint(w.c.pac, ctx);
  }
};

template <>
struct fmt::formatter<pptp::gateway::CallWords> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  auto format(const pptp::gateway::CallWords& w, fmt::format_context& ctx) const {
    using pptp::gateway::CallIdWord;
    return fmt::format_to(ctx.out(), "call={} pns_call_id={} pac_call_id={}", w.call.id,
                          CallIdWord{w.call.pns_call_id}, CallIdWord{w.call.pac_call_id});
  }
};
