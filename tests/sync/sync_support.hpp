// Shared by the sync tests: a key and call records with distinct values in every field.
#pragma once

#include <string>
#include <vector>

#include "sync/message.hpp"
#include "tests/support/packets.hpp"

namespace pptp::sync::test {

inline const std::vector<std::uint8_t> kKey(32, 0x5a);

inline CallState sample_call(std::uint16_t pns_call_id, std::string user = "alice") {
  CallState c;
  c.key.pns = {pptp::test::addr("192.0.2.11"), 40001};
  c.key.pac = {pptp::test::addr("198.51.100.2"), 1723};
  c.key.pns_call_id = pns_call_id;
  c.outside = pptp::test::addr("203.0.113.1");
  c.pac_call_id = static_cast<std::uint16_t>(0x4000 + pns_call_id);
  c.outside_call_id = static_cast<std::uint16_t>(pns_call_id * 2);
  c.verdict = PolicyVerdict::Allow;
  c.user = std::move(user);
  c.started_ms = 1'700'000'000'123;
  c.updated_ms = 1'700'000'004'567;
  c.positions_known = true;
  c.next_sequence = {0x11223344, 0xa0b0c0d0};
  return c;
}

// The first bytes of a message on sample_call's control connection, cut before its Call ID
// field (a WAN-Error-Notify's first 6 bytes: length 40, type 1, the cookie's first two).
inline MessageHead sample_head(std::uint32_t sequence, std::uint8_t direction = 1) {
  const CallState c = sample_call(1);
  return MessageHead{c.key.pns, c.key.pac, direction, sequence, {0x00, 0x28, 0x00, 0x01, 0x1a, 0x2b}};
}

}  // namespace pptp::sync::test
