// A replicated call for the HA daemon tests (ha_node_test.cpp, ha_healing_test.cpp).
#pragma once

#include "sync/record.hpp"
#include "tests/support/packets.hpp"

namespace pptp::daemon::test {

inline sync::CallState replicated(std::uint16_t port, std::uint16_t pns_call_id, std::uint16_t outside_call_id,
                                  sync::PolicyVerdict verdict = sync::PolicyVerdict::NoPolicy) {
  sync::CallState s;
  s.key = {{pptp::test::addr("192.0.2.11"), port}, {pptp::test::addr("198.51.100.2"), 1723}, pns_call_id};
  s.outside = pptp::test::addr("198.51.100.1");
  s.pac_call_id = 500;
  s.outside_call_id = outside_call_id;
  s.verdict = verdict;
  return s;
}

}  // namespace pptp::daemon::test
