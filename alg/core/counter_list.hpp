// Counters declared once. A counter list is a macro that names each counter with a
// callback macro X(member, key, help); from that one list come the struct's fields, the
// status JSON and (for metrics) a visitor, so that no counter is written out by hand twice
// (as Envoy's stats macros do).
//
//   #define MY_COUNTERS(X) X(packets, "packets", "packets seen") X(drops, "drops", "...")
//   struct MyCounters { MY_COUNTERS(PPTP_COUNTER_FIELD) };
//   template <class F> void visit(const MyCounters& c, F&& f) { MY_COUNTERS(PPTP_COUNTER_VISIT) }
#pragma once

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#define PPTP_COUNTER_FIELD(member, key, help) std::uint64_t member = 0;
// Inside a function with a counters object `c` and a callable `f(key, value, help)`.
#define PPTP_COUNTER_VISIT(member, key, help) f(std::string_view(key), c.member, std::string_view(help));

namespace pptp {

// The JSON object {key: value, ...} of a counter list, through its visitor.
template <class Counters, class Visit>
nlohmann::json counters_json(const Counters& c, Visit&& visit) {
  nlohmann::json out = nlohmann::json::object();
  visit(c, [&](std::string_view key, std::uint64_t value, std::string_view) { out[std::string(key)] = value; });
  return out;
}

}  // namespace pptp
