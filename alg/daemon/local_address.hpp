// Whether an IPv4 address is configured here on an interface that is up: how a restarted
// daemon tells that keepalived holds the pair's virtual address on this node (docs/ha.md,
// "A restarted active daemon: promoting it again"). keepalived adds the virtual addresses
// in MASTER state only and removes them at BACKUP and FAULT; no packet can change that.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "alg/core/result.hpp"
#include "alg/wire/ip.hpp"

namespace pptp::daemon {

struct LocalAddress {
  wire::Ipv4Address address;
  bool up = false;  // its interface is up and has its carrier (IFF_UP, IFF_RUNNING)
};

// The IPv4 addresses of this network namespace's interfaces (getifaddrs); an error says why not.
Result<std::vector<LocalAddress>, std::string> local_addresses();

// Pure: whether `a` is among `here` on an interface that is up with its carrier (an address
// left on a link that is down is not held: keepalived's FAULT may not have removed it yet).
bool holds_address(const std::vector<LocalAddress>& here, wire::Ipv4Address a);

// How long after a demotion the virtual address may still be here: keepalived removes it on
// entering BACKUP or FAULT before it runs the notify that demotes us, so seconds are ample.
inline constexpr double kVirtualAddressGoneWithin = 5.0;
// Looks, kVirtualAddressGoneWithin apart, that must all find it held before it is said: one
// look also finds a node that keepalived is making MASTER between its addresses and the
// notify that promotes us (a failover soon after this node's BACKUP notify; seen under load).
inline constexpr int kHeldLooksToSay = 2;
// Still held that long after a demotion, ha-virtual-address is not an address keepalived
// moves (a node's own address given by mistake): every restarted daemon on this node would
// promote itself (docs/ha.md, "A restarted active daemon"). Said once per demotion.
class VirtualAddressWatch {
 public:
  void demoted(double now) {
    next_look_ = now + kVirtualAddressGoneWithin;
    held_looks_ = 0;
  }
  void promoted() { stop(); }
  // The address should be looked up now (demoted, a grace over, not said yet).
  bool due(double now) const { return next_look_ && now >= *next_look_; }
  // Looked up: whether to say it now (held at every look). Gone, or said: done until the
  // next demotion.
  bool looked(double now, bool held) {
    if (!held || ++held_looks_ >= kHeldLooksToSay) {
      stop();
      return held;
    }
    next_look_ = now + kVirtualAddressGoneWithin;
    return false;
  }
  // Seconds from the demotion to the look that says it.
  static constexpr double said_after() { return kVirtualAddressGoneWithin * kHeldLooksToSay; }

 private:
  void stop() {
    next_look_.reset();
    held_looks_ = 0;
  }

  std::optional<double> next_look_;
  int held_looks_ = 0;
};
}  // namespace pptp::daemon
