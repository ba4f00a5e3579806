// One call's NAT binding, both ways: the one type the gateway, the fast path's netlink side
// (nftables/fastpath.hpp) and the daemon pass between them.
#pragma once

#include <cstdint>
#include <optional>

#include "alg/wire/ip.hpp"

namespace pptp::nat {

struct CallBinding {
  wire::Ipv4Address server;
  wire::Ipv4Address outside;          // the public address the server sends to
  wire::Ipv4Address inside;           // the client
  std::uint16_t outside_call_id = 0;  // the Key of the server's GRE as it arrives
  std::uint16_t inside_call_id = 0;   // the Key the client expects
  std::uint16_t server_call_id = 0;   // the Key of the client's GRE (the PAC's Call ID)
  bool translated() const { return outside_call_id != inside_call_id; }
  bool operator==(const CallBinding&) const = default;
};

// Packets the kernel forwarded for one direction of a call since its element was added: to
// the client (the key's server, outside and outside_call_id are filled) or to the server
// (inside, server and server_call_id).
struct BindingCount {
  bool to_client = true;
  CallBinding key;
  std::uint64_t packets = 0, bytes = 0;
  // The whole binding, stored with the element by the daemon that added it: what a restarted
  // daemon adopts.
  std::optional<CallBinding> binding;
};

}  // namespace pptp::nat
