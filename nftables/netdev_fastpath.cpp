#include "nftables/netdev_fastpath.hpp"

#include <cstring>
#include <sstream>

#include "alg/core/bytes.hpp"
#include "nftables/rules.hpp"

namespace pptp::nft {

namespace {

constexpr std::string_view kKey = "meta iif . ip saddr . ip daddr . @th,48,16";
constexpr std::string_view kChainEgress = "to_egress";
// Where the PPP frame starts, in bits of the GRE header (RFC 2637 4.1: 8 bytes, + 4 with
// the sequence number S, + 4 with the acknowledgment A), as in the ip table's fast_ppp.
constexpr int kPppAfterSequence = 96, kPppAfterSequenceAck = 128;

// Each role's chains: its lookups, and the PPP tests before them (with S; with S and A).
struct RoleChains {
  std::string lookup, ppp, ppp_ack;
};
RoleChains chains_of(NetdevRole role) {
  const std::string r = role == NetdevRole::FromServer ? "server" : "client";
  return {"lookup_from_" + r, "ppp_from_" + r, "ppp_ack_from_" + r};
}

void map(std::ostringstream& s, std::string_view name, std::string_view data, bool counted) {
  s << "  map " << name << " {\n    typeof " << kKey << " : " << data << "\n    flags timeout\n"
    << (counted ? "    counter\n" : "") << "  }\n";
}

// The lookups (after the guards), one chain per role, so that a packet pays only its own
// direction's: each rewrites as fast_lookup does (nft's payload statement fixes the IPv4
// checksum; GRE has none over the addresses, RFC 2637 4.1), then leaves by the rewritten
// destination's hop.
void lookup_chains(std::ostringstream& s) {
  const std::string go = "goto " + std::string(kChainEgress);
  s << "  chain " << chains_of(NetdevRole::FromServer).lookup << " {\n"
    << "    ip daddr set " << kKey << " map @" << kNetdevInPlain << " " << go << "\n"
    << "    ip daddr set " << kKey << " map @" << kNetdevInAddress << " @th,48,16 set " << kKey << " map @"
    << kNetdevInCallId << " " << go << "\n"
    << "  }\n"
    << "  chain " << chains_of(NetdevRole::FromClient).lookup << " {\n"
    << "    ip saddr set " << kKey << " map @" << kNetdevOutSource << " " << go << "\n"
    << "  }\n"
    << "  chain " << kChainEgress << " {\n"
    << "    ip daddr vmap @" << kNetdevEgress << "\n"
    << "    counter name \"" << kNetdevCounterNoEgress << "\" drop\n"
    << "  }\n";
  for (const NetdevRole role : {NetdevRole::FromServer, NetdevRole::FromClient}) {
    const RoleChains c = chains_of(role);
    s << ppp_return_chain(c.ppp, kPppAfterSequence, c.lookup) << ppp_return_chain(c.ppp_ack, kPppAfterSequenceAck, c.lookup);
  }
}

// The guards: only unfragmented enhanced GRE with TTL to spare reaches the lookups, which
// netdev_role_script() appends (one set per role the device has).
void ingress_chain(std::ostringstream& s, const std::string& device) {
  s << "  chain in_" << device << " {\n"
    << "    type filter hook ingress device \"" << device << "\" priority filter; policy accept;\n"
    << "    meta protocol != ip return\n"
    << "    ip protocol != gre return\n"
    << "    # a first fragment would be rewritten while the rest wait for it in defragmentation\n"
    << "    ip frag-off & 0x3fff != 0 return\n"
    << "    # fwd drops TTL 1 silently; routing answers ICMP Time Exceeded\n"
    << "    ip ttl <= 1 return\n"
    << "  }\n";
}

void role_rules(std::ostringstream& s, const std::string& device, NetdevRole role) {
  const RoleChains c = chains_of(role);
  s << "  chain in_" << device << " {\n" << enhanced_gre_jumps(c.ppp, c.ppp_ack, c.lookup) << "  }\n";
}

}  // namespace

bool valid_device_name(std::string_view name) {
  if (name.empty() || name.size() > kDeviceNameMax) return false;
  for (char c : name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '_' || c == '.';
    if (!plain) return false;
  }
  return true;
}

std::string hop_chain_name(const NetdevHop& hop) {
  std::string name = "hop_" + std::to_string(hop.ifindex) + "_";
  if (!hop.gateway) return name + "connected";
  std::string address = wire::to_string(*hop.gateway);
  for (char& c : address) {
    if (c == '.') c = '_';
  }
  return name + address;
}

std::string netdev_table_script(const std::vector<std::string>& ingress_devices) {
  std::ostringstream s;
  s << "table netdev " << kNetdevTable << " {\n"
    << "  counter " << kNetdevCounterNoEgress << " {\n  }\n";
  map(s, kNetdevInPlain, "ip daddr", true);
  map(s, kNetdevInAddress, "ip daddr", true);
  map(s, kNetdevInCallId, "@th,48,16", false);
  map(s, kNetdevOutSource, "ip saddr", true);
  s << "  map " << kNetdevEgress << " {\n    type ipv4_addr : verdict\n    flags timeout\n  }\n";
  lookup_chains(s);
  for (const std::string& device : ingress_devices) {
    ingress_chain(s, device);
    role_rules(s, device, NetdevRole::FromServer);
    role_rules(s, device, NetdevRole::FromClient);
  }
  s << "}\n";
  return s.str();
}

std::string netdev_hop_script(const NetdevHop& hop) {
  std::ostringstream s;
  s << "table netdev " << kNetdevTable << " {\n  chain " << hop_chain_name(hop) << " {\n    fwd ip to "
    << (hop.gateway ? wire::to_string(*hop.gateway) : std::string("ip daddr")) << " device \"" << hop.device
    << "\"\n  }\n}\n";
  return s.str();
}

std::string netdev_ingress_script(const std::string& device) {
  std::ostringstream s;
  s << "table netdev " << kNetdevTable << " {\n";
  ingress_chain(s, device);
  s << "}\n";
  return s.str();
}

std::string netdev_role_script(const std::string& device, NetdevRole role) {
  std::ostringstream s;
  s << "table netdev " << kNetdevTable << " {\n";
  role_rules(s, device, role);
  s << "}\n";
  return s.str();
}

NetdevKey netdev_key_of(int ingress_ifindex, wire::Ipv4Address a, wire::Ipv4Address b, std::uint16_t call_id) {
  NetdevKey k{};
  const auto index = static_cast<std::uint32_t>(ingress_ifindex);
  std::memcpy(k.data(), &index, sizeof index);  // meta iif: the host's byte order
  store_u32(k.data() + 4, a.value);
  store_u32(k.data() + 8, b.value);
  store_u16(k.data() + 12, call_id);
  return k;
}

std::string_view name_of(NetdevRefusal r) { return r == NetdevRefusal::MtuDiffers ? "mtu_differs" : "device_name"; }

Result<std::pair<NetdevHop, NetdevHop>, NetdevRefusal> netdev_hops(const NetdevRoute& to_client,
                                                                   const NetdevRoute& to_server) {
  if (!valid_device_name(to_client.device) || !valid_device_name(to_server.device)) {
    return unexpected(NetdevRefusal::DeviceName);
  }
  if (to_client.route.mtu != to_server.route.mtu) return unexpected(NetdevRefusal::MtuDiffers);
  return std::pair{NetdevHop{to_client.route.output_ifindex, to_client.device, to_client.route.gateway},
                   NetdevHop{to_server.route.output_ifindex, to_server.device, to_server.route.gateway}};
}

}  // namespace pptp::nft
