// The proxy's Call IDs and GRE routes, shared by every relayed control connection.
//
// In proxy mode pptp-alg is the PAC toward each client and the PNS toward each server, so
// it picks the Call IDs the peers put in their GRE Key (RFC 2637 4.1: the Key holds the
// receiver's Call ID). All of them come from this one pool: a Call ID names exactly one
// leg of one call in the whole proxy, so GRE from any peer finds its call by the Key alone
// and two clients can never collide, whatever Call IDs they chose themselves.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include "alg/wire/ip.hpp"
#include "gateway/pac_call_ids.hpp"

namespace pptp::proxy {

class Relay;

inline constexpr std::size_t kCallIdSpace = 65536;

enum class Leg : std::uint8_t { Client, Server };

// Where GRE that arrives with one of our Call IDs in its Key goes next.
struct GreRoute {
  wire::Ipv4Address expected_source;  // only this peer may send with the Key
  wire::Ipv4Address destination;      // the other leg's peer
  wire::Ipv4Address source;           // toward the client: the server's address (it expects
                                      // GRE from there); toward the server: 0, the router's
  std::uint16_t key = 0;              // the other peer's Call ID
  Leg toward = Leg::Server;
  std::uint16_t call = 0;             // names the call: our Call ID toward the client
  std::uint16_t reverse = 0;          // our Call ID of the call's other leg (its route)
  bool operator==(const GreRoute&) const = default;
};

// Sequential: round robin from `first` (tests). Random: each Call ID picked at a random
// place of the pool (getrandom), then the next free one: a client that learns its own Call
// IDs cannot tell another call's, which are the Keys its GRE must carry (s29 review). A
// freed Call ID may come back soon then; GRE with it is still taken only from the new
// call's own peer (GreRoute::expected_source).
enum class CallIdOrder : std::uint8_t { Sequential, Random };

class CallBook {
 public:
  explicit CallBook(std::uint16_t first = 1) : next_(first) {}
  explicit CallBook(CallIdOrder order) : order_(order) {}

  // A Call ID no leg of any call uses, or nothing when all 65536 are taken (answered at once,
  // without a look through the pool).
  std::optional<std::uint16_t> allocate();
  void release(std::uint16_t call_id);
  // Told of every release (the kernel fast path withdraws the call's elements at once).
  void on_release(std::function<void(std::uint16_t)> f) { on_release_ = std::move(f); }
  bool in_use(std::uint16_t call_id) const { return used_.test(call_id); }
  std::size_t used() const { return in_use_; }

  // The servers' own Call IDs of the proxied calls, per server: every server leg leaves from
  // the router's address, so two calls a server gave one Call ID are one call to it (RFC
  // 2637 4.1). Poptop gives each control connection a range of 128 and lets a connection's
  // calls run into the next range (s35 review F0). Each is held by the call named by its
  // Call ID toward the server (`call_id`, unique in the pool), of the relay that has it: the
  // relay decides who keeps an ID a server gave twice (Relay::claim_server_call_id), and
  // only the holding call gives it back.
  struct ServerCallHolder {
    std::uint16_t call_id = 0;
    Relay* relay = nullptr;
    std::uint32_t ordinal = 0;  // the call's ProxyCall::ordinal (gateway::holder_ran_past_its_range)
  };
  const ServerCallHolder* server_call_id_holder(wire::Ipv4Address server, std::uint16_t id) const {
    return server_call_ids_.holder(server_key(server, id));
  }
  void hold_server_call_id(wire::Ipv4Address server, std::uint16_t id, ServerCallHolder holder) {
    server_call_ids_.hold(server_key(server, id), holder);
  }
  void give_back_server_call_id(wire::Ipv4Address server, std::uint16_t id, std::uint16_t call) {
    server_call_ids_.release(server_key(server, id), call);
  }

  // Routes exist only for allocated Call IDs; release() removes the route too.
  void set_route(std::uint16_t call_id, const GreRoute& route);
  const GreRoute* route(std::uint16_t call_id) const;

 private:
  std::bitset<kCallIdSpace> used_;
  std::bitset<kCallIdSpace> routed_;
  static gateway::PacCallKey server_key(wire::Ipv4Address server, std::uint16_t id) {
    return gateway::PacCallKey{server.value, 0, id};  // the public address: the router's own
  }
  gateway::PacCallIds<ServerCallHolder> server_call_ids_;
  std::unique_ptr<std::array<GreRoute, kCallIdSpace>> routes_ = std::make_unique<std::array<GreRoute, kCallIdSpace>>();
  std::function<void(std::uint16_t)> on_release_;
  CallIdOrder order_ = CallIdOrder::Sequential;
  std::size_t in_use_ = 0;
  std::uint16_t next_ = 1;  // round robin: a freed Call ID is reused last (stale GRE finds nothing)
};

}  // namespace pptp::proxy
